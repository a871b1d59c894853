//! The settings a plugin reads, declared in its manifest (`[[settings]]`): the app renders
//! a form from them and the host checks every call's settings against them before the
//! plugin runs (unknown names, missing required ones, wrong types), then fills in the
//! declared defaults. A plugin that declares none gets its settings unchecked, as before
//! declarations existed.

use serde::{Deserialize, Serialize};

use crate::dto::Property;

/// What a setting holds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum SettingType {
    /// Any text.
    #[default]
    String,
    /// `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`, any case: the SDK's `flag`).
    Bool,
    /// A whole number.
    Integer,
    /// One of `choices`.
    Choice,
    /// A date and time of day, `2026-12-01T14:37:15` (seconds and a fraction optional, a
    /// trailing `Z` allowed; no other offset): the app offers a calendar. Which clock it
    /// is read on is the plugin's to say in `help`.
    Time,
}

/// The calls a setting is given to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum SettingVerb {
    /// `discover` and `assess`.
    Discover,
    /// `backup`.
    Backup,
    /// `plan-restore` and `restore`.
    Restore,
}

impl SettingVerb {
    fn name(self) -> &'static str {
        match self {
            SettingVerb::Discover => "discovery",
            SettingVerb::Backup => "backup",
            SettingVerb::Restore => "restore",
        }
    }
}

/// One declared setting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct SettingDecl {
    /// Name as given (`node`, `path-map`): a-z, 0-9 and `-`.
    pub name: String,
    /// What it holds.
    #[serde(rename = "type", default)]
    pub kind: SettingType,
    /// The calls it is given to.
    pub verbs: Vec<SettingVerb>,
    /// What it means, for the form and for errors.
    pub help: String,
    /// A call without it is refused.
    #[serde(default)]
    pub required: bool,
    /// Given to the plugin when the call does not set it.
    #[serde(default)]
    #[ts(optional)]
    pub default: Option<String>,
    /// The values a `choice` takes.
    #[serde(default)]
    pub choices: Vec<String>,
    /// Entered masked in the app's forms. (Anything that grants access belongs with the
    /// host, as a capability the admin grants, not in a setting.)
    #[serde(default)]
    pub secret: bool,
    /// For a restore setting: another restore setting (a string) that looks its values
    /// up. A plan given `<found-by>=<text>` lists the values that match as steps with
    /// ids `pick:<value>`, each step's title saying what it is (the restore refuses
    /// it); the app offers them as a search beside this field.
    #[serde(default, rename = "found-by", skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub found_by: Option<String>,
}

/// The most settings a manifest declares.
const MAX_SETTINGS: usize = 64;

/// Check the declarations of a manifest.
pub(crate) fn validate(decls: &[SettingDecl]) -> Result<(), String> {
    if decls.len() > MAX_SETTINGS {
        return Err(format!("at most {MAX_SETTINGS} settings may be declared"));
    }
    let mut seen = std::collections::HashSet::new();
    for d in decls {
        let n = &d.name;
        let well_formed = !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !well_formed {
            return Err(format!(
                "setting `{n}`: a name is 1-64 characters of a-z, 0-9 and -"
            ));
        }
        if !seen.insert(n.as_str()) {
            return Err(format!("setting `{n}` is declared twice"));
        }
        if d.verbs.is_empty() {
            return Err(format!(
                "setting `{n}` names no verb (discover, backup, restore)"
            ));
        }
        if d.help.trim().is_empty() {
            return Err(format!("setting `{n}` needs help text for the admin"));
        }
        if d.kind == SettingType::Choice && d.choices.is_empty() {
            return Err(format!("setting `{n}` is a choice without choices"));
        }
        if d.kind != SettingType::Choice && !d.choices.is_empty() {
            return Err(format!("setting `{n}` has choices but is not a choice"));
        }
        if d.required && d.default.is_some() {
            return Err(format!(
                "setting `{n}` is required and has a default: one or the other"
            ));
        }
        if let Some(v) = &d.default {
            check_value(d, v).map_err(|why| format!("setting `{n}`: default {why}"))?;
        }
        if let Some(by) = &d.found_by {
            // the finder is a plain search box: optional, with no default (which would
            // turn every restore into a listing), finding values for this field alone
            let finder = decls.iter().find(|f| &f.name == by && f.name != *n);
            let fits = finder.is_some_and(|f| {
                f.kind == SettingType::String
                    && f.verbs.contains(&SettingVerb::Restore)
                    && !f.required
                    && f.default.is_none()
                    && f.found_by.is_none()
            }) && matches!(d.kind, SettingType::String | SettingType::Time)
                && d.verbs.contains(&SettingVerb::Restore)
                && decls
                    .iter()
                    .filter(|o| o.found_by.as_ref() == Some(by))
                    .count()
                    == 1;
            if !fits {
                return Err(format!(
                    "setting `{n}` is found by `{by}`: both must be restore settings, `{n}` a string or a time, and `{by}` another one, a string, optional, without a default, finding values for `{n}` alone"
                ));
            }
        }
    }
    Ok(())
}

/// Whether `value` fits `d`'s type; the reason when not.
fn check_value(d: &SettingDecl, value: &str) -> Result<(), String> {
    let ok = match d.kind {
        SettingType::String => true,
        SettingType::Bool => ["true", "false", "yes", "no", "on", "off", "1", "0"]
            .iter()
            .any(|b| value.trim().eq_ignore_ascii_case(b)),
        SettingType::Integer => value.trim().parse::<i64>().is_ok(),
        SettingType::Choice => d.choices.iter().any(|c| c == value),
        SettingType::Time => is_time(value),
    };
    if ok {
        return Ok(());
    }
    // a secret's value is never repeated, not even in an error
    let shown = if d.secret {
        "the value given".to_string()
    } else {
        format!("`{value}`")
    };
    Err(match d.kind {
        SettingType::Bool => format!("{shown} is not true or false"),
        SettingType::Integer => format!("{shown} is not a whole number"),
        SettingType::Time => format!("{shown} is not a date and time like 2026-12-01T14:37:15"),
        _ => format!("{shown} is not one of: {}", d.choices.join(", ")),
    })
}

/// `YYYY-MM-DDTHH:MM[:SS[.fraction of 1 to 7 digits]]`, an optional `Z`, nothing else (no
/// space, sign or offset: what the app's calendar gives and a plugin's parser expects),
/// on a day the calendar has.
fn is_time(value: &str) -> bool {
    let v = value.strip_suffix('Z').unwrap_or(value);
    let b = v.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let shape = b.len() >= 16
        && [0..4, 5..7, 8..10, 11..13, 14..16]
            .into_iter()
            .all(|r| digits(&b[r]))
        && at(4, b'-')
        && at(7, b'-')
        && at(10, b'T')
        && at(13, b':');
    let seconds = match b.get(16..) {
        Some([]) => true,
        Some([b':', s1, s2, rest @ ..]) => {
            digits(&[*s1, *s2])
                && *s1 < b'6'
                && match rest {
                    [] => true,
                    [b'.', f @ ..] => f.len() <= 7 && digits(f),
                    _ => false,
                }
        }
        _ => false,
    };
    // the day and the hour and minute in range (chrono, on the shape already checked)
    shape && seconds && chrono::NaiveDateTime::parse_from_str(&v[..16], "%Y-%m-%dT%H:%M").is_ok()
}

/// Check `given` for a `verb` call against `decls` and return the settings the plugin
/// gets: the given ones, then the declared defaults of those not given. With no
/// declarations at all, `given` passes unchecked.
///
/// # Errors
/// Every problem found, one message each, naming the setting and what it takes.
pub fn check_settings(
    decls: &[SettingDecl],
    verb: SettingVerb,
    given: &[Property],
) -> Result<Vec<Property>, Vec<String>> {
    if decls.is_empty() {
        return Ok(given.to_vec());
    }
    let mine: Vec<&SettingDecl> = decls.iter().filter(|d| d.verbs.contains(&verb)).collect();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in given {
        if !seen.insert(p.name.as_str()) {
            problems.push(format!("setting `{}` is given twice", p.name));
            continue;
        }
        match mine.iter().find(|d| d.name == p.name) {
            None => {
                let known: Vec<&str> = mine.iter().map(|d| d.name.as_str()).collect();
                problems.push(if known.is_empty() {
                    format!(
                        "`{}` is not a setting: this plugin takes none for {}",
                        p.name,
                        verb.name()
                    )
                } else {
                    format!(
                        "`{}` is not a {} setting of this plugin (it takes: {})",
                        p.name,
                        verb.name(),
                        known.join(", ")
                    )
                });
            }
            Some(d) => {
                if let Err(why) = check_value(d, &p.value) {
                    problems.push(format!("setting `{}`: {why} ({})", p.name, d.help));
                }
            }
        }
    }
    let mut out = given.to_vec();
    for d in mine.iter().filter(|d| !seen.contains(d.name.as_str())) {
        if d.required {
            problems.push(format!("setting `{}` is required: {}", d.name, d.help));
        } else if let Some(v) = &d.default {
            out.push(Property {
                name: d.name.clone(),
                value: v.clone(),
            });
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, kind: SettingType, verbs: &[SettingVerb]) -> SettingDecl {
        SettingDecl {
            name: name.into(),
            kind,
            verbs: verbs.to_vec(),
            help: format!("the {name}"),
            required: false,
            default: None,
            choices: vec![],
            secret: false,
            found_by: None,
        }
    }

    fn props(pairs: &[(&str, &str)]) -> Vec<Property> {
        Property::list(pairs)
    }

    #[test]
    fn settings_are_checked_against_their_declaration_and_defaults_filled_in() {
        use SettingVerb::*;
        let mut mode = decl("mode", SettingType::Choice, &[Restore]);
        mode.choices = vec!["hyperv".into(), "rehydrate".into()];
        mode.default = Some("hyperv".into());
        let mut group = decl("resource-group", SettingType::String, &[Restore]);
        group.required = true;
        let decls = vec![
            mode,
            group,
            decl("start", SettingType::Bool, &[Restore]),
            decl("cluster", SettingType::String, &[Discover]),
            decl("retries", SettingType::Integer, &[Backup, Restore]),
        ];
        validate(&decls).unwrap();
        let ok = check_settings(
            &decls,
            Restore,
            &props(&[("resource-group", "rg"), ("start", "Yes")]),
        );
        assert_eq!(
            ok.unwrap(),
            props(&[
                ("resource-group", "rg"),
                ("start", "Yes"),
                ("mode", "hyperv")
            ])
        );
        let bad = check_settings(
            &decls,
            Restore,
            &props(&[
                ("start", "maybe"),
                ("mode", "vmware"),
                ("cluster", "a"),
                ("retries", "x"),
            ]),
        )
        .unwrap_err();
        assert_eq!(bad.len(), 5, "{bad:?}");
        assert!(bad[0].contains("`maybe` is not true or false"));
        assert!(bad[1].contains("hyperv, rehydrate"));
        assert!(bad[2].contains("not a restore setting") && bad[2].contains("resource-group"));
        assert!(bad[3].contains("whole number"));
        assert!(bad[4].contains("`resource-group` is required"));
        let twice = check_settings(
            &decls,
            Discover,
            &props(&[("cluster", "a"), ("cluster", "b")]),
        );
        assert!(twice.unwrap_err()[0].contains("twice"));
        let when = [decl("stop-at", SettingType::Time, &[Restore])];
        for ok in [
            "2026-12-01T14:37:15",
            "2026-12-01T14:37",
            "2026-12-01T14:37:15.123Z",
            "2024-02-29T00:00:00",
        ] {
            assert!(
                check_settings(&when, Restore, &props(&[("stop-at", ok)])).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "2026-02-30T10:00:00",
            "yesterday",
            "2026-12-01",
            "2026-12-01T25:00:00",
            "2026-12-01T14:37:15+02:00",
            " 2026-12-01T14:37:15",
            "2026-12-01T\n14:37",
            "2026-12-01T14: 37",
            "+2026-12-01T14:37",
            "2026-1-5T1:2",
            "2026-12-01T14:60",
            "2026-12-01T14:37:60",
            "2026-12-01T14:37:15.12345678",
            "2026-12-01T14:37:15.",
            "2026-12-01T14:37:15ZZ",
            "2026-12-01 14:37:15",
            "",
        ] {
            let e = check_settings(&when, Restore, &props(&[("stop-at", bad)])).unwrap_err();
            assert!(e[0].contains("not a date and time like"), "{bad}: {e:?}");
        }
        // no declarations: anything goes, as before
        assert_eq!(
            check_settings(&[], Backup, &props(&[("x", "1")])).unwrap(),
            props(&[("x", "1")])
        );
    }

    #[test]
    fn malformed_declarations_are_refused() {
        use SettingVerb::*;
        let mut required_default = decl("a", SettingType::String, &[Backup]);
        required_default.required = true;
        required_default.default = Some("x".into());
        let mut bad_default = decl("b", SettingType::Bool, &[Backup]);
        bad_default.default = Some("perhaps".into());
        let found_by = |by: &str, finder: SettingDecl| {
            let mut d = decl("object", SettingType::String, &[Restore]);
            d.found_by = Some(by.into());
            vec![d, finder]
        };
        // a finder that is declared, a string, of restore: accepted
        validate(&found_by(
            "find",
            decl("find", SettingType::String, &[Restore]),
        ))
        .unwrap();
        for (d, why) in [
            (vec![decl("A b", SettingType::String, &[Backup])], "a-z"),
            (vec![decl("a", SettingType::String, &[])], "no verb"),
            (
                vec![decl("a", SettingType::Choice, &[Backup])],
                "without choices",
            ),
            (vec![required_default], "one or the other"),
            (vec![bad_default], "default `perhaps`"),
            (
                found_by("nothing", decl("find", SettingType::String, &[Restore])),
                "found by `nothing`",
            ),
            (
                found_by("find", decl("find", SettingType::Bool, &[Restore])),
                "both must be restore settings",
            ),
            (
                found_by("find", decl("find", SettingType::String, &[Backup])),
                "both must be restore settings",
            ),
            (
                found_by("find", {
                    let mut f = decl("find", SettingType::String, &[Restore]);
                    f.default = Some("x".into());
                    f
                }),
                "without a default",
            ),
            (
                found_by("find", {
                    let mut f = decl("find", SettingType::String, &[Restore]);
                    f.found_by = Some("object".into());
                    f
                }),
                "found by `find`",
            ),
            (
                found_by("object", decl("find", SettingType::String, &[Restore])),
                "found by `object`",
            ),
            (
                vec![
                    decl("a", SettingType::String, &[Backup]),
                    decl("a", SettingType::Bool, &[Restore]),
                ],
                "twice",
            ),
        ] {
            let e = validate(&d).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
