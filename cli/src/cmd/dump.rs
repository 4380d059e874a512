//! `ember dump MODEL --tensor NAME [--rows A..B] [--format f32|text]`: a
//! tensor's values dequantized to f32, so any tool can check ember's
//! dequantization. Rows are ggml rows: `dims[0]` values each.

use crate::model_arg::ModelArg;
use anyhow::{anyhow, bail, Context};
use std::io::{BufWriter, Write};
use std::ops::Range;

/// Output encodings.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Little-endian IEEE f32, 4 bytes per value, no header.
    F32,
    /// One value per line, in the shortest decimal form that reads back to the same f32.
    Text,
}

/// Arguments of `ember dump`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Tensor name, e.g. `token_embd.weight` (`ember info` lists them).
    #[arg(long, short = 't', value_name = "NAME")]
    tensor: String,
    /// Rows to dump: `A..B` (B excluded), `A..`, `..B` or a single row `A`.
    /// Default: every row.
    #[arg(long, value_name = "A..B")]
    rows: Option<String>,
    /// Output encoding.
    #[arg(long, value_enum, default_value_t = Format::F32)]
    format: Format,
}

/// Runs `ember dump`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.model.resolve()?;
    let model = ember::Model::open(&path).with_context(|| format!("{}", path.display()))?;
    let file = model.gguf();
    let t = file.tensor(&args.tensor).ok_or_else(|| {
        anyhow!(
            "no tensor named `{}` in {} (`ember info` lists the {} tensors)",
            args.tensor,
            path.display(),
            file.tensor_count()
        )
    })?;
    let n_rows = t.n_rows();
    let row_len = usize::try_from(t.row_len()).context("row length does not fit in memory")?;
    let row_bytes = t.ty.row_bytes(row_len).ok_or_else(|| {
        anyhow!("{}: a row of {row_len} values is not a whole number of {} blocks", t.name, t.ty.name())
    })?;
    let rows = match &args.rows {
        Some(spec) => parse_rows(spec, n_rows)?,
        None => 0..n_rows,
    };
    let start = usize::try_from(rows.start)? * row_bytes;
    let end = usize::try_from(rows.end)? * row_bytes;
    let bytes = t.data.get(start..end).ok_or_else(|| {
        anyhow!("{}: rows {}..{} lie outside its {} bytes of data", t.name, rows.start, rows.end, t.data.len())
    })?;

    // Dequantize a bounded number of rows at a time: constant memory for any tensor.
    let rows_per_chunk = (1 << 20) / row_len.max(1) + 1;
    let mut values = vec![0f32; rows_per_chunk.min(rows.end as usize - rows.start as usize) * row_len];
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = (|| -> anyhow::Result<()> {
        for chunk in bytes.chunks(rows_per_chunk * row_bytes) {
            let n = chunk.len() / row_bytes * row_len;
            let vals = &mut values[..n];
            ember_quant::matmul::dequantize(t.ty, chunk, vals).with_context(|| format!("dequantizing {}", t.name))?;
            match args.format {
                Format::F32 => {
                    for v in vals.iter() {
                        out.write_all(&v.to_le_bytes())?;
                    }
                }
                Format::Text => {
                    for v in vals.iter() {
                        writeln!(out, "{v}")?;
                    }
                }
            }
        }
        out.flush()?;
        Ok(())
    })();
    // A write error goes to the shared classifier: `ember dump ... | head`
    // (the reader left) is not an error, a full disk is.
    result.or_else(|e| e.downcast::<std::io::Error>().map_or_else(Err, super::closed_or_failed))
}

/// Parses `A..B`, `A..`, `..B`, `A..=B` or `A` against a tensor of `n_rows` rows.
fn parse_rows(spec: &str, n_rows: u64) -> anyhow::Result<Range<u64>> {
    let num = |s: &str, what: &str| -> anyhow::Result<u64> {
        s.trim().parse().map_err(|_| anyhow!("--rows {spec}: {what} `{s}` is not a row number"))
    };
    let range = if let Some((a, b)) = spec.split_once("..") {
        let start = if a.trim().is_empty() { 0 } else { num(a, "start")? };
        let end = match b.strip_prefix('=') {
            Some(b) => num(b, "end")?.checked_add(1).ok_or_else(|| anyhow!("--rows {spec}: end is too large"))?,
            None if b.trim().is_empty() => n_rows,
            None => num(b, "end")?,
        };
        start..end
    } else {
        let r = num(spec, "row")?;
        r..r.saturating_add(1)
    };
    // Out of range first: row u64::MAX alone is an empty range once saturated.
    if range.start >= n_rows || range.end > n_rows {
        bail!("--rows {spec}: out of range, the tensor has {n_rows} rows (0..{n_rows})");
    }
    if range.start >= range.end {
        bail!("--rows {spec}: the range is empty (start must be below end)");
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::parse_rows;

    #[test]
    fn row_ranges() {
        assert_eq!(parse_rows("2..5", 10).unwrap(), 2..5);
        assert_eq!(parse_rows("2..=5", 10).unwrap(), 2..6);
        assert_eq!(parse_rows("7..", 10).unwrap(), 7..10);
        assert_eq!(parse_rows("..3", 10).unwrap(), 0..3);
        assert_eq!(parse_rows("9", 10).unwrap(), 9..10);
        assert_eq!(parse_rows("..", 10).unwrap(), 0..10);
        let err = |s: &str| parse_rows(s, 10).unwrap_err().to_string();
        assert_eq!(err("5..11"), "--rows 5..11: out of range, the tensor has 10 rows (0..10)");
        assert_eq!(err("10"), "--rows 10: out of range, the tensor has 10 rows (0..10)");
        let max = u64::MAX.to_string();
        assert_eq!(err(&max), format!("--rows {max}: out of range, the tensor has 10 rows (0..10)"));
        assert_eq!(err("5..5"), "--rows 5..5: the range is empty (start must be below end)");
        assert_eq!(err("6..2"), "--rows 6..2: the range is empty (start must be below end)");
        assert_eq!(err("a..2"), "--rows a..2: start `a` is not a row number");
        assert_eq!(err("-1"), "--rows -1: row `-1` is not a row number");
        assert_eq!(err("1..=18446744073709551615"), "--rows 1..=18446744073709551615: end is too large");
    }
}
