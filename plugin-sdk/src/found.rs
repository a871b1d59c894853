//! The values a restore setting offers (its declaration's `found-by`): a plan given the
//! finder setting lists the values that match as steps with ids `pick:<value>`, which the
//! app's restore wizard shows as a search beside the field. Such a plan restores nothing;
//! the plugin's `restore` refuses the finder setting.

use crate::{Error, ErrorCode, Property, RestorePlan, Result, Step, empty_plan, setting};

/// The id prefix of a step that offers a value.
pub const PICK: &str = "pick:";

/// Most values one search lists.
pub const MAX: usize = 50;

/// What a restore given the finder setting `finder` answers: an error, before anything is
/// read, saying the setting only lists values for `field`.
///
/// # Errors
/// `finder` is given.
pub fn refuse_in_restore(o: &[Property], finder: &str, field: &str) -> Result<()> {
    match setting(o, finder) {
        Some(_) => Err(Error::new(
            ErrorCode::InvalidInput,
            format!("{finder} only lists values to restore with {field}=; run it with --plan-only"),
        )),
        None => Ok(()),
    }
}

/// What to look for: `text` trimmed and lower-cased, or an error saying what to give.
///
/// # Errors
/// `invalid-input` when `text` is blank; `what` names what it may be part of.
pub fn needle(text: &str, what: &str) -> Result<String> {
    let n = text.trim().to_lowercase();
    if n.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("find needs part of {what} to look for"),
        ));
    }
    Ok(n)
}

/// A value offered, as the wizard lists it.
pub struct Found {
    /// What the setting is set to when it is picked.
    pub value: String,
    /// What it is, in a line.
    pub title: String,
    /// More about it.
    pub detail: String,
}

/// The plan that lists the first [`MAX`] of `hits` (each described by `describe`, which
/// is called for those alone), saying when more match `text`, or none.
///
/// # Errors
/// What `describe` returns.
pub fn listing<T>(
    hits: &[T],
    text: &str,
    mut describe: impl FnMut(&T) -> Result<Found>,
) -> Result<RestorePlan> {
    let max = MAX;
    let mut plan = empty_plan();
    for h in hits.iter().take(max) {
        let f = describe(h)?;
        plan.steps
            .push(Step::new(&format!("{PICK}{}", f.value), &f.title, f.detail));
    }
    let text = text.trim();
    if hits.len() > max {
        plan.warnings.push(format!(
            "{} more hold `{text}`; the first {max} are listed: narrow the search",
            hits.len() - max
        ));
    }
    if hits.is_empty() {
        plan.warnings
            .push(format!("nothing in the restore point holds `{text}`"));
    }
    Ok(plan)
}
