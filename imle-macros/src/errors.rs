//! Collecting several errors (each with its own span) into one `syn::Error`, and the
//! "did you mean" suggestions.

/// Errors gathered during one phase; [`Errors::finish`] combines them.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Ok(value)` if nothing was pushed, otherwise all the errors.
    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

/// Combines two phases' outcomes, keeping every error.
pub fn both<A, B>(a: syn::Result<A>, b: syn::Result<B>) -> syn::Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(mut e), Err(f)) => {
            e.combine(f);
            Err(e)
        }
    }
}

/// The candidate closest to `word` by edit distance (with transpositions), if it is close
/// enough to be a likely typo: at most one edit per three characters, and at least one.
/// Failing that, the one candidate that `word` (of two characters or more) abbreviates:
/// "min" for "minimize".
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let limit = (word.chars().count() / 3).max(1);
    let typo = candidates
        .iter()
        .map(|&c| (distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c);
    let mut abbreviated = candidates
        .iter()
        .filter(|c| word.chars().count() >= 2 && c.len() > word.len() && c.starts_with(word));
    typo.or_else(|| match (abbreviated.next(), abbreviated.next()) {
        (Some(&only), None) => Some(only),
        _ => None,
    })
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of
/// adjacent characters each cost 1.
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * width + j] + 1)
                    .min(d[i * width + j - 1] + 1)
                    .min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("lambda", "lambda"), 0);
        assert_eq!(distance("lamda", "lambda"), 1);
        assert_eq!(distance("nosie", "noise"), 1);
        assert_eq!(distance("", "tau"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions_are_close_or_absent() {
        let keys = ["lambda", "samples", "seed", "tau", "target_tau"];
        assert_eq!(closest("lamda", keys), Some("lambda"));
        assert_eq!(closest("sample", keys), Some("samples"));
        assert_eq!(closest("taget_tau", keys), Some("target_tau"));
        assert_eq!(closest("banana", keys), None);
        // Abbreviations of one candidate only.
        assert_eq!(closest("min", ["maximize", "minimize"]), Some("minimize"));
        assert_eq!(closest("targ", ["target", "target_tau"]), None);
        assert_eq!(closest("m", ["maximize", "minimize", "mean"]), None);
    }
}
