//! Just enough of the MATLAB Level 5 MAT-file format to read the ILSVRC-2012 devkit's `meta.mat`:
//! numeric, character, cell and struct arrays, plain or zlib-compressed (`miCOMPRESSED`), in
//! little-endian files. Anything else reads as [`MatValue::Unsupported`] rather than failing.

use std::io::Read;

#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    Numeric(Vec<f64>),
    Char(String),
    Cell(Vec<MatValue>),
    /// `elements[i][f]` is field `fields[f]` of element `i` (column-major order).
    Struct {
        fields: Vec<String>,
        elements: Vec<Vec<MatValue>>,
    },
    Unsupported,
}

impl MatValue {
    /// Field `name` of struct element `i`.
    pub fn field(&self, i: usize, name: &str) -> Option<&MatValue> {
        match self {
            MatValue::Struct { fields, elements } => {
                let f = fields.iter().position(|n| n == name)?;
                elements.get(i)?.get(f)
            }
            _ => None,
        }
    }
}

const MI_INT8: u32 = 1;
/// The most a compressed element may inflate to (64 MB).
const MAX_INFLATED: usize = 64 << 20;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// One data element: its type and its bytes.
struct Element<'a> {
    kind: u32,
    data: &'a [u8],
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, String> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .ok_or_else(|| "truncated element tag".to_string())
}

/// Splits `bytes` into its data elements (small ones packed in their tag included).
fn elements(bytes: &[u8]) -> Result<Vec<Element<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let first = u32_at(bytes, at)?;
        if first >> 16 != 0 {
            // Small data element: type and size in one word, up to 4 bytes of data in the next.
            let (kind, size) = (first & 0xffff, (first >> 16) as usize);
            let data = bytes
                .get(at + 4..at + 4 + size)
                .ok_or("truncated small element")?;
            out.push(Element { kind, data });
            at += 8;
        } else {
            let size = u32_at(bytes, at + 4)? as usize;
            let data = bytes
                .get(at + 8..at + 8 + size)
                .ok_or("element longer than its file")?;
            out.push(Element { kind: first, data });
            let padded = if first == MI_COMPRESSED {
                size
            } else {
                size.div_ceil(8) * 8
            };
            at += 8 + padded;
        }
    }
    Ok(out)
}

/// Numbers of any numeric element type, as f64.
fn numbers(element: &Element) -> Vec<f64> {
    let d = element.data;
    match element.kind {
        1 => d.iter().map(|&b| b as i8 as f64).collect(),
        2 => d.iter().map(|&b| b as f64).collect(),
        3 => d
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f64)
            .collect(),
        4 => d
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as f64)
            .collect(),
        5 => d
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        6 => d
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        7 => d
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        9 => d
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        12 => d
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        13 => d
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        _ => Vec::new(),
    }
}

/// A miMATRIX element's contents: its name and value.
fn matrix(data: &[u8]) -> Result<(String, MatValue), String> {
    if data.is_empty() {
        return Ok((String::new(), MatValue::Numeric(Vec::new())));
    }
    let parts = elements(data)?;
    if parts.len() < 3 {
        return Err("matrix without flags, dimensions and name".into());
    }
    let class = parts[0].data.first().copied().ok_or("empty array flags")?;
    let dimensions: Vec<usize> = numbers(&parts[1]).iter().map(|&d| d as usize).collect();
    let count = dimensions
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or("array dimensions overflow")?;
    let name = String::from_utf8_lossy(parts[2].data).into_owned();
    let rest = &parts[3..];
    let value = match class {
        // mxCELL_CLASS
        1 => MatValue::Cell(
            rest.iter()
                .filter(|e| e.kind == MI_MATRIX)
                .map(|e| matrix(e.data).map(|(_, v)| v))
                .collect::<Result<_, _>>()?,
        ),
        // mxSTRUCT_CLASS: field name length, the names, then each element's fields in turn.
        2 => {
            let name_length = *numbers(rest.first().ok_or("struct without field names")?)
                .first()
                .ok_or("struct field name length")? as usize;
            let names = rest
                .get(1)
                .filter(|e| e.kind == MI_INT8)
                .ok_or("struct field names")?;
            let fields: Vec<String> = names
                .data
                .chunks(name_length.max(1))
                .map(|n| {
                    String::from_utf8_lossy(n)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .collect();
            let values: Vec<MatValue> = rest[2..]
                .iter()
                .map(|e| matrix(e.data).map(|(_, v)| v))
                .collect::<Result<_, _>>()?;
            if Some(values.len()) != count.checked_mul(fields.len()) {
                return Err(format!(
                    "struct {name:?}: {} values for {count} elements of {} fields",
                    values.len(),
                    fields.len()
                ));
            }
            let elements = values
                .chunks(fields.len().max(1))
                .map(<[MatValue]>::to_vec)
                .collect();
            MatValue::Struct { fields, elements }
        }
        // mxCHAR_CLASS: UTF-16 code units (or UTF-8), column-major; rows are joined by newlines.
        4 => {
            let part = rest.first().ok_or("char array without data")?;
            let units: Vec<u16> = match part.kind {
                16 | 1 | 2 => part.data.iter().map(|&b| b as u16).collect(),
                _ => numbers(part).iter().map(|&u| u as u16).collect(),
            };
            let rows = dimensions.first().copied().unwrap_or(1).max(1);
            // The rows come from the file: no more of them than there are characters.
            if rows > units.len().max(1) {
                return Err(format!(
                    "char array {name:?} of {rows} rows holds {} characters",
                    units.len()
                ));
            }
            let columns = units.len() / rows;
            let lines: Vec<String> = (0..rows)
                .map(|r| {
                    String::from_utf16_lossy(
                        &(0..columns)
                            .map(|c| units[c * rows + r])
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            MatValue::Char(lines.join("\n"))
        }
        6..=15 => MatValue::Numeric(rest.first().map(numbers).unwrap_or_default()),
        _ => MatValue::Unsupported,
    };
    Ok((name, value))
}

/// Every variable of a MAT-file.
pub fn read_variables(bytes: &[u8]) -> Result<Vec<(String, MatValue)>, String> {
    if bytes.len() < 128 {
        return Err("shorter than a MAT-file header".into());
    }
    if &bytes[126..128] != b"IM" {
        return Err("not a little-endian Level 5 MAT-file (v7.3/HDF5 files are not read)".into());
    }
    let mut variables = Vec::new();
    for element in elements(&bytes[128..])? {
        match element.kind {
            MI_MATRIX => variables.push(matrix(element.data)?),
            MI_COMPRESSED => {
                // A compressed element inflates to at most MAX_INFLATED bytes: a small file
                // cannot ask for gigabytes (the devkit's meta.mat inflates to 0.3 MB).
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(element.data)
                    .take(MAX_INFLATED as u64 + 1)
                    .read_to_end(&mut inflated)
                    .map_err(|e| format!("bad compressed element: {e}"))?;
                if inflated.len() > MAX_INFLATED {
                    return Err(format!(
                        "a compressed element inflates to over {MAX_INFLATED} bytes"
                    ));
                }
                for inner in elements(&inflated)? {
                    if inner.kind == MI_MATRIX {
                        variables.push(matrix(inner.data)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(variables)
}

/// Writes MAT-files for tests (this crate's, and the parsers' property tests): a struct array of
/// numeric and char fields, like the devkit's.
#[doc(hidden)]
pub mod writer {
    fn element(kind: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(kind.to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        out.resize(out.len().div_ceil(8) * 8, 0);
        out
    }

    fn header_parts(class: u8, dims: &[i32], name: &str) -> Vec<u8> {
        let mut out = element(6, &[class, 0, 0, 0, 0, 0, 0, 0]);
        out.extend(element(
            5,
            &dims
                .iter()
                .flat_map(|d| d.to_le_bytes())
                .collect::<Vec<_>>(),
        ));
        out.extend(element(1, name.as_bytes()));
        out
    }

    pub enum Field {
        Number(f64),
        Text(String),
    }

    fn value(field: &Field) -> Vec<u8> {
        let body = match field {
            Field::Number(x) => {
                let mut b = header_parts(6, &[1, 1], "");
                b.extend(element(9, &x.to_le_bytes()));
                b
            }
            Field::Text(s) => {
                let units: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
                let mut b = header_parts(4, &[1, s.encode_utf16().count() as i32], "");
                b.extend(element(4, &units));
                b
            }
        };
        element(14, &body)
    }

    /// A MAT-file holding one `n x 1` struct array `name`; compressed when `compress`.
    pub fn struct_array(
        name: &str,
        fields: &[&str],
        rows: &[Vec<Field>],
        compress: bool,
    ) -> Vec<u8> {
        let mut body = header_parts(2, &[rows.len() as i32, 1], name);
        let width = 32;
        body.extend(element(5, &(width as i32).to_le_bytes()));
        let names: Vec<u8> = fields
            .iter()
            .flat_map(|f| {
                let mut n = f.as_bytes().to_vec();
                n.resize(width, 0);
                n
            })
            .collect();
        body.extend(element(1, &names));
        for row in rows {
            for field in row {
                body.extend(value(field));
            }
        }
        let matrix = element(14, &body);
        let mut file = vec![b' '; 116];
        file[..20].copy_from_slice(b"MATLAB 5.0 MAT-file ");
        file.extend([0u8; 8]);
        file.extend(0x0100u16.to_le_bytes());
        file.extend(b"IM");
        if compress {
            use std::io::Write;
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(&matrix).unwrap();
            let packed = z.finish().unwrap();
            file.extend(15u32.to_le_bytes());
            file.extend((packed.len() as u32).to_le_bytes());
            file.extend(packed);
        } else {
            file.extend(matrix);
        }
        file
    }
}

#[cfg(test)]
mod tests {
    use super::writer::{Field, struct_array};
    use super::*;

    #[test]
    fn struct_arrays_read_back_plain_and_compressed() {
        let rows = vec![
            vec![Field::Number(1.0), Field::Text("n01440764".into())],
            vec![Field::Number(2.0), Field::Text("n01443537".into())],
            vec![Field::Number(1001.0), Field::Text("n00001740".into())],
        ];
        for compress in [false, true] {
            let bytes = struct_array("synsets", &["ILSVRC2012_ID", "WNID"], &rows, compress);
            let variables = read_variables(&bytes).unwrap();
            assert_eq!(variables.len(), 1);
            let (name, synsets) = &variables[0];
            assert_eq!(name, "synsets");
            assert_eq!(
                synsets.field(1, "WNID"),
                Some(&MatValue::Char("n01443537".into()))
            );
            assert_eq!(
                synsets.field(2, "ILSVRC2012_ID"),
                Some(&MatValue::Numeric(vec![1001.0]))
            );
            assert_eq!(synsets.field(3, "WNID"), None);
        }
        assert!(read_variables(b"short").is_err());
    }

    /// Found by the property test (crates/alexnet-data/tests/fuzz.rs): sizes declared by the file
    /// are not taken on trust.
    #[test]
    fn declared_sizes_cannot_ask_for_unbounded_memory() {
        // A char array whose dimensions claim 67 million rows for two characters: the reader
        // built 67 million empty strings (1.6 GB) before.
        let rows = vec![vec![Field::Text("ab".into())]];
        let mut bytes = struct_array("synsets", &["WNID"], &rows, false);
        let dims: Vec<u8> = [5u32, 8, 1, 2]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let at = bytes
            .windows(dims.len())
            .rposition(|w| w == dims)
            .expect("the char array's dimensions");
        bytes[at + 8..at + 12].copy_from_slice(&0x0400_0001u32.to_le_bytes());
        let err = read_variables(&bytes).unwrap_err();
        assert!(err.contains("67108865 rows holds 2 characters"), "{err}");

        // A compressed element that inflates to 80 MB of zeros (a zip bomb in 80 KB).
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 80 << 20]).unwrap();
        let packed = z.finish().unwrap();
        let mut bomb = vec![b' '; 124];
        bomb.extend(0x0100u16.to_le_bytes());
        bomb.extend(b"IM");
        bomb.extend(15u32.to_le_bytes());
        bomb.extend((packed.len() as u32).to_le_bytes());
        bomb.extend(packed);
        let err = read_variables(&bomb).unwrap_err();
        assert!(err.contains("inflates to over"), "{err}");
    }
}
