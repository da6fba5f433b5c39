//! `template.yaml` read as YAML (with CloudFormation's `!Ref`, `!GetAtt`, `!Sub` tags kept), for
//! the tests that hold the deployed shape to what the code needs.

use yaml_serde::Value;

pub struct Template(pub Value);

pub struct Function<'a>(pub &'a Value);

/// The project's template, parsed.
pub fn load() -> Template {
    let text = std::fs::read_to_string(super::workspace_root().join("template.yaml"))
        .expect("template.yaml is readable");
    Template(yaml_serde::from_str(&text).expect("template.yaml is YAML"))
}

/// The parameter a `!Ref` names, if `value` is one.
pub fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        _ => None,
    }
}

impl Template {
    pub fn resource(&self, name: &str) -> &Value {
        let resource = &self.0["Resources"][name];
        assert!(!resource.is_null(), "template.yaml has no resource {name}");
        resource
    }

    pub fn function(&self, name: &str) -> Function<'_> {
        Function(&self.resource(name)["Properties"])
    }

    pub fn globals(&self) -> &Value {
        &self.0["Globals"]["Function"]
    }

    /// A parameter's default, as text (numbers and strings alike).
    pub fn default_of(&self, parameter: &str) -> String {
        let default = &self.0["Parameters"][parameter]["Default"];
        match default {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("parameter {parameter} has no scalar default: {other:?}"),
        }
    }

    /// A number written out or a `!Ref` to a parameter, with the parameter's default.
    pub fn number(&self, value: &Value) -> u64 {
        match reference(value) {
            Some(parameter) => self.default_of(parameter).parse().expect("a number"),
            None => value
                .as_u64()
                .unwrap_or_else(|| panic!("not a number: {value:?}")),
        }
    }
}

impl Function<'_> {
    /// Every action of the function's inline policy statements (`Policies: - Statement:`).
    /// A SAM policy template (`DynamoDBCrudPolicy: ...`) in the list is refused: its actions
    /// are not written in the template, so nothing could check them.
    pub fn policy_actions(&self) -> Vec<String> {
        let policies = self.0["Policies"]
            .as_sequence()
            .expect("Policies is a list");
        let mut actions = Vec::new();
        for policy in policies {
            let statements = policy["Statement"]
                .as_sequence()
                .unwrap_or_else(|| panic!("a policy that is not inline statements: {policy:?}"));
            for statement in statements {
                assert_eq!(statement["Effect"], "Allow");
                match &statement["Action"] {
                    Value::String(action) => actions.push(action.clone()),
                    Value::Sequence(list) => actions.extend(
                        list.iter()
                            .map(|a| a.as_str().expect("an action name").to_string()),
                    ),
                    other => panic!("an Action that is not a name or a list: {other:?}"),
                }
            }
        }
        actions
    }

    /// Whether a statement's resources include the table's indexes (`${Table.Arn}/index/*`).
    pub fn grants_table_indexes(&self) -> bool {
        let policies = self.0["Policies"]
            .as_sequence()
            .expect("Policies is a list");
        policies
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten())
            .flat_map(|statement| match &statement["Resource"] {
                Value::Sequence(list) => list.clone(),
                one => vec![one.clone()],
            })
            .any(|resource| match resource {
                Value::Tagged(tagged) if tagged.tag == "Sub" => {
                    tagged.value.as_str() == Some("${Table.Arn}/index/*")
                }
                _ => false,
            })
    }
}
