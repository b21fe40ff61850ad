//! Plain-text tables for the `list` commands: every column as wide as its
//! widest cell, so columns line up whatever the ids and names are.

/// Formats `header` and `rows` as left-aligned columns two spaces apart.
/// The last column is not padded (no trailing spaces).
pub(super) fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        let cells: Vec<&str> = cells.collect();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// Prints a table, or a line saying there is nothing to list.
pub(super) fn print(header: &[&str], rows: &[Vec<String>], empty: &str) {
    if rows.is_empty() {
        println!("{empty}");
    } else {
        print!("{}", render(header, rows));
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn columns_start_where_their_headers_start() {
        let rows = vec![
            vec![
                "a-very-long-client-identifier-0123456789".to_owned(),
                "x".to_owned(),
                "Notes".to_owned(),
            ],
            vec![
                "short".to_owned(),
                "confidential".to_owned(),
                "Billing job".to_owned(),
            ],
        ];
        let text = render(&["CLIENT ID", "TYPE", "NAME"], &rows);
        let lines: Vec<&str> = text.lines().collect();
        let type_at = lines[0].find("TYPE").expect("header");
        let name_at = lines[0].find("NAME").expect("header");
        assert_eq!(lines[1].find("x "), Some(type_at));
        assert_eq!(lines[2].find("confidential"), Some(type_at));
        assert_eq!(lines[1].find("Notes"), Some(name_at));
        assert_eq!(lines[2].find("Billing job"), Some(name_at));
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }
}
