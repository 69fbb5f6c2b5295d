//! A Kubernetes container's environment and command line: variables in the order Kubernetes
//! builds them (`envFrom` sources first, then `env`, a later name replacing an earlier one),
//! `$(VAR)` references expanded against the variables defined before, and `command`/`args`
//! turned into berth's entrypoint and cmd by Kubernetes' rules against the image's
//! Entrypoint/Cmd.

/// The variables of one container, in definition order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerEnv {
    vars: Vec<(String, String)>,
}

impl ContainerEnv {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` as is (an `envFrom` entry: no expansion).
    pub fn set(&mut self, name: &str, value: String) {
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name.to_string(), value)),
        }
    }

    /// Sets `name` to `value` with `$(VAR)` references to variables defined so far expanded
    /// (an `env` entry with `value`).
    pub fn set_expanded(&mut self, name: &str, value: &str) {
        let expanded = self.expand(value);
        self.set(name, expanded);
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `input` with Kubernetes' `$(VAR)` expansion: a defined `VAR` is replaced by its value,
    /// an undefined one is left as written, `$$` is a literal `$`, and any other `$` stays.
    pub fn expand(&self, input: &str) -> String {
        let mut out = String::with_capacity(input.len());
        let mut rest = input;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('(') {
                match inner.find(')') {
                    Some(close) => {
                        let name = &inner[..close];
                        match self.get(name) {
                            Some(value) => out.push_str(value),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        rest = &inner[close + 1..];
                    }
                    None => {
                        out.push_str("$(");
                        rest = inner;
                    }
                }
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        out
    }

    /// `NAME=value` strings in definition order, as an OCI process wants them.
    pub fn to_strings(&self) -> Vec<String> {
        self.vars.iter().map(|(n, v)| format!("{n}={v}")).collect()
    }
}

/// Kubernetes' `command`/`args` (already expanded) as berth's `--entrypoint` and cmd:
/// neither keeps the image's Entrypoint and Cmd; `args` alone keeps the Entrypoint and
/// replaces the Cmd; `command` replaces both (the image's Cmd is dropped even without `args`).
pub fn entrypoint_and_cmd(command: &[String], args: &[String]) -> (Option<String>, Vec<String>) {
    if command.is_empty() {
        (None, args.to_vec())
    } else {
        let mut cmd = command.to_vec();
        cmd.extend(args.iter().cloned());
        (Some(String::new()), cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn expansion_follows_kubernetes() {
        let mut env = ContainerEnv::new();
        env.set("A", "one".into());
        env.set_expanded("B", "$(A)-two");
        assert_eq!(env.get("B"), Some("one-two"));
        for (input, want) in [
            ("$(A)", "one"),
            ("x$(A)y$(B)", "xoneyone-two"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(A)", "$(A)"),
            ("$$", "$"),
            ("$A", "$A"),
            ("cost $5", "cost $5"),
            ("$(A", "$(A"),
            ("end$", "end$"),
            ("$()", "$()"),
        ] {
            assert_eq!(env.expand(input), want, "{input}");
        }
    }

    #[test]
    fn a_later_definition_replaces_in_place() {
        let mut env = ContainerEnv::new();
        env.set("A", "1".into());
        env.set("B", "2".into());
        env.set_expanded("A", "$(B)$(A)");
        assert_eq!(env.to_strings(), s(&["A=21", "B=2"]));
    }

    #[test]
    fn command_and_args_follow_kubernetes_rules() {
        let run = |command: &[&str], args: &[&str]| entrypoint_and_cmd(&s(command), &s(args));
        // berth's --entrypoint "" clears the image's Entrypoint and Cmd; None keeps them
        // (a non-empty cmd replacing the image's Cmd).
        assert_eq!(run(&[], &[]), (None, vec![]));
        assert_eq!(run(&[], &["a"]), (None, s(&["a"])));
        assert_eq!(run(&["/bin/x"], &[]), (Some(String::new()), s(&["/bin/x"])));
        assert_eq!(
            run(&["/bin/x"], &["a", "b"]),
            (Some(String::new()), s(&["/bin/x", "a", "b"]))
        );
    }
}
