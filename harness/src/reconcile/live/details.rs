//! The checks' details for the whole run from those of its parts. A check's detail counts
//! what it looked at ("972 transfer ids with an effect"); the same check on two parts gives
//! two sentences that differ only in their numbers, and the whole run's sentence is the
//! same with each number summed. So a detail of a per-transfer check holds no number that
//! is not a count (`reconcile::live::tests` compares every detail with the whole run's).

/// A sentence cut into its text and its numbers: the text between numbers, and the numbers.
fn cut(sentence: &str) -> (Vec<&str>, Vec<u64>) {
    let mut texts = Vec::new();
    let mut numbers = Vec::new();
    let mut rest = sentence;
    loop {
        let start = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        texts.push(&rest[..start]);
        rest = &rest[start..];
        if rest.is_empty() {
            return (texts, numbers);
        }
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        match rest[..end].parse() {
            Ok(n) => numbers.push(n),
            // Too long to be a count: kept as text.
            Err(_) => return (vec![sentence], Vec::new()),
        }
        rest = &rest[end..];
    }
}

fn joined(texts: &[&str], numbers: &[u64]) -> String {
    let mut out = String::new();
    for (i, text) in texts.iter().enumerate() {
        out.push_str(text);
        if let Some(n) = numbers.get(i) {
            out.push_str(&n.to_string());
        }
    }
    out
}

/// `a` and `b` with each number summed, when they are the same sentence; else `b`.
pub fn summed(a: &str, b: &str) -> String {
    let ((texts_a, numbers_a), (texts_b, numbers_b)) = (cut(a), cut(b));
    if texts_a != texts_b || numbers_a.len() != numbers_b.len() {
        return b.to_owned();
    }
    let numbers: Vec<u64> = numbers_a
        .iter()
        .zip(&numbers_b)
        .map(|(x, y)| x.saturating_add(*y))
        .collect();
    joined(&texts_b, &numbers)
}

/// `sentence` with its first number set to `count` (when it starts with one).
pub fn first_count_set(sentence: &str, count: u64) -> String {
    let (texts, mut numbers) = cut(sentence);
    match (texts.first(), numbers.first_mut()) {
        (Some(&""), Some(first)) => {
            *first = count;
            joined(&texts, &numbers)
        }
        _ => sentence.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_sentence_has_its_counts_summed_another_is_left_alone() {
        assert_eq!(
            summed(
                "972 answers with a transfer id checked; 0 requests only ever shed",
                "28 answers with a transfer id checked; 2 requests only ever shed"
            ),
            "1000 answers with a transfer id checked; 2 requests only ever shed"
        );
        assert_eq!(summed("3 keys checked", "at most one"), "at most one");
        assert_eq!(summed("no number", "no number"), "no number");
        assert_eq!(
            first_count_set("972 sagas final 20 ms after the load ended", 2800),
            "2800 sagas final 20 ms after the load ended"
        );
        assert_eq!(first_count_set("sagas not final", 5), "sagas not final");
    }
}
