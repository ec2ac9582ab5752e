use crate::{CoreError, Result};
use serde::{Deserialize, Serialize};

/// A named, ordered set of class labels; a label is its index in `names`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassSet {
    /// Name of the set (e.g. `megc3`).
    pub name: String,
    /// Class names, index = label.
    pub names: Vec<String>,
}

impl ClassSet {
    /// A set from names.
    pub fn new(name: impl Into<String>, names: &[&str]) -> Self {
        Self { name: name.into(), names: names.iter().map(|s| s.to_string()).collect() }
    }

    /// The MEGC2019 composite 3-class set: 0 negative, 1 positive, 2 surprise.
    pub fn megc3() -> Self {
        Self::new("megc3", &["negative", "positive", "surprise"])
    }

    /// The CASME II 5-class set commonly used in the literature.
    pub fn casme2_5() -> Self {
        Self::new("casme2_5", &["happiness", "disgust", "repression", "surprise", "others"])
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the set has no classes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Name of label `i`.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(String::as_str)
    }

    /// Label of a class name (case-insensitive) or of a decimal index in range.
    pub fn parse(&self, s: &str) -> Result<usize> {
        let t = s.trim();
        if let Ok(i) = t.parse::<usize>() {
            if i < self.len() {
                return Ok(i);
            }
        }
        self.names.iter().position(|n| n.eq_ignore_ascii_case(t)).ok_or_else(|| CoreError::InvalidParam {
            name: "label",
            value: t.to_string(),
            reason: "not a class of this label set",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_indices() {
        let c = ClassSet::megc3();
        assert_eq!(c.parse("Surprise").unwrap(), 2);
        assert_eq!(c.parse("1").unwrap(), 1);
        assert!(c.parse("3").is_err());
        assert!(c.parse("fear").is_err());
    }
}
