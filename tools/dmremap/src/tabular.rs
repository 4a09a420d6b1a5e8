//! Plain-text tables: a header row and left-aligned columns separated by two spaces.

/// Renders `rows` under `headers`, each column as wide as its widest cell; every line ends with `\n`.
pub fn render<S: AsRef<str>>(headers: &[&str], rows: &[Vec<S>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.as_ref().chars().count();
            match widths.get_mut(i) {
                Some(slot) => *slot = (*slot).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    line(&mut out, &widths, headers.iter().copied());
    for row in rows {
        line(&mut out, &widths, row.iter().map(AsRef::as_ref));
    }
    out
}

fn line<'a>(out: &mut String, widths: &[usize], cells: impl Iterator<Item = &'a str>) {
    let mut text = String::new();
    for (i, cell) in cells.enumerate() {
        if i != 0 {
            text.push_str("  ");
        }
        text.push_str(cell);
        let pad = widths
            .get(i)
            .copied()
            .unwrap_or(0)
            .saturating_sub(cell.chars().count());
        text.extend(std::iter::repeat_n(' ', pad));
    }
    out.push_str(text.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_lines_have_no_trailing_spaces() {
        let rows = vec![
            vec!["r0", "ok", "3"],
            vec!["a-long-name", "spare_exhausted", "12"],
        ];
        let text = render(&["DEVICE", "STATE", "N"], &rows);
        assert_eq!(
            text,
            "DEVICE       STATE            N\n\
             r0           ok               3\n\
             a-long-name  spare_exhausted  12\n"
        );
    }

    #[test]
    fn no_rows_gives_the_header() {
        let rows: Vec<Vec<String>> = Vec::new();
        assert_eq!(render(&["A", "B"], &rows), "A  B\n");
    }
}
