//! Evaluation splits: leave-one-subject-out (LOSO), leave-one-dataset-out and seeded
//! k-fold by subject. Folds hold sample indices into the [`Dataset`] they were made from.

use crate::{Dataset, Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One fold: which samples train and which test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// Name of the fold (`casme2/sub01` for LOSO, `samm` for leave-one-dataset-out, `fold3`).
    pub name: String,
    /// Indices of the training samples, ascending.
    pub train: Vec<usize>,
    /// Indices of the test samples, ascending.
    pub test: Vec<usize>,
}

/// Leave-one-subject-out: one fold per `(dataset, subject)` key, in sorted key order. This is the
/// MEGC2019 composite protocol (68 folds on the 442 samples): every other subject's samples train.
pub fn loso(ds: &Dataset) -> Vec<Fold> {
    ds.subjects()
        .into_iter()
        .map(|key| {
            let (test, train): (Vec<usize>, Vec<usize>) =
                (0..ds.len()).partition(|&i| ds.samples[i].subject_key() == key);
            Fold { name: format!("{}/{}", key.0, key.1), train, test }
        })
        .collect()
}

/// Leave-one-dataset-out: one fold per dataset name (the held-out dataset tests).
/// Errors when the collection holds fewer than two datasets.
pub fn leave_one_dataset_out(ds: &Dataset) -> Result<Vec<Fold>> {
    let names = ds.dataset_names();
    if names.len() < 2 {
        return Err(Error::param(
            "datasets",
            names.len(),
            "leave-one-dataset-out needs at least two datasets",
        ));
    }
    Ok(names
        .into_iter()
        .map(|n| {
            let (test, train): (Vec<usize>, Vec<usize>) =
                (0..ds.len()).partition(|&i| ds.samples[i].dataset == n);
            Fold { name: n, train, test }
        })
        .collect())
}

/// k-fold cross-validation by subject: subjects are shuffled with `seed` and dealt round-robin
/// into `k` groups, so no subject is in both the training and the test side of a fold.
/// Errors when `k < 2` or there are fewer subjects than folds.
pub fn kfold_by_subject(ds: &Dataset, k: usize, seed: u64) -> Result<Vec<Fold>> {
    let mut subjects = ds.subjects();
    if k < 2 {
        return Err(Error::param("k", k, "need at least 2 folds"));
    }
    if subjects.len() < k {
        return Err(Error::param("k", k, format!("only {} subjects", subjects.len())));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    subjects.shuffle(&mut rng);
    let mut group = std::collections::HashMap::new();
    for (i, s) in subjects.into_iter().enumerate() {
        group.insert(s, i % k);
    }
    let of = |i: usize| group.get(&ds.samples[i].subject_key()).copied().unwrap_or(0);
    Ok((0..k)
        .map(|f| {
            let (test, train): (Vec<usize>, Vec<usize>) = (0..ds.len()).partition(|&i| of(i) == f);
            Fold { name: format!("fold{f}"), train, test }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sample;
    use mex_core::ClassSet;

    fn toy() -> Dataset {
        let mut v = Vec::new();
        for (d, s, n) in [("a", "1", 3), ("a", "2", 2), ("b", "1", 4), ("b", "7", 1), ("c", "x", 2)] {
            for i in 0..n {
                v.push(Sample {
                    dataset: d.into(),
                    subject: s.into(),
                    clip: format!("{s}_{i}"),
                    label: Some(i % 3),
                    ..Default::default()
                });
            }
        }
        Dataset::new("toy", ClassSet::megc3(), v)
    }

    #[test]
    fn loso_holds_out_each_subject_once() {
        let ds = toy();
        let folds = loso(&ds);
        // Subject "1" of dataset a and of dataset b are different people.
        assert_eq!(folds.len(), 5);
        let mut seen = vec![0; ds.len()];
        for f in &folds {
            assert_eq!(f.train.len() + f.test.len(), ds.len());
            let key = ds.samples[f.test[0]].subject_key();
            assert!(f.test.iter().all(|&i| ds.samples[i].subject_key() == key));
            assert!(f.train.iter().all(|&i| ds.samples[i].subject_key() != key));
            for &i in &f.test {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1));
        assert_eq!(folds[0].name, "a/1");
        assert_eq!(folds[0].test, vec![0, 1, 2]);
    }

    #[test]
    fn lodo_and_kfold() {
        let ds = toy();
        let f = leave_one_dataset_out(&ds).unwrap();
        assert_eq!(f.iter().map(|f| f.test.len()).collect::<Vec<_>>(), vec![5, 5, 2]);
        assert!(leave_one_dataset_out(&ds.filtered(|s| s.dataset == "a")).is_err());

        let k1 = kfold_by_subject(&ds, 2, 7).unwrap();
        let k2 = kfold_by_subject(&ds, 2, 7).unwrap();
        assert_eq!(k1, k2);
        let total: usize = k1.iter().map(|f| f.test.len()).sum();
        assert_eq!(total, ds.len());
        for f in &k1 {
            for &i in &f.test {
                let key = ds.samples[i].subject_key();
                assert!(f.train.iter().all(|&j| ds.samples[j].subject_key() != key));
            }
        }
        // Some seed gives a different assignment.
        assert!((0..20).any(|s| kfold_by_subject(&ds, 2, s).unwrap() != k1));
        assert!(kfold_by_subject(&ds, 1, 0).is_err());
        assert!(kfold_by_subject(&ds, 6, 0).is_err());
    }
}
