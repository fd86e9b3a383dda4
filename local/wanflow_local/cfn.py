"""Reads a SAM/CloudFormation template and resolves its intrinsic functions, for `deploy`.

Enough of CloudFormation for a template like wanflow's: short tags (via cfn-lint's decoder),
Parameters with defaults and overrides, Conditions, Mappings, pseudo parameters, SAM Globals,
and Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::If, Fn::Select, Fn::Split, Fn::FindInMap,
Fn::Base64, Fn::GetAZs, Fn::ToJsonString, Fn::Length. Fn::ImportValue, Fn::Cidr and
Fn::Transform raise `TemplateError`: nothing local can answer them.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cfnlint.decode import decode_str  # type: ignore[import-untyped]

NO_VALUE: Final = "AWS::NoValue"
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}]+)\}")
_INTRINSICS: Final = frozenset(
    {
        "Ref",
        "Condition",
        "Fn::GetAtt",
        "Fn::Sub",
        "Fn::Join",
        "Fn::If",
        "Fn::Select",
        "Fn::Split",
        "Fn::FindInMap",
        "Fn::Base64",
        "Fn::GetAZs",
        "Fn::ToJsonString",
        "Fn::Length",
        "Fn::Equals",
        "Fn::And",
        "Fn::Or",
        "Fn::Not",
        "Fn::ImportValue",
        "Fn::Cidr",
        "Fn::Transform",
    }
)


class TemplateError(ValueError):
    """The template cannot be read or resolved as CloudFormation would."""


class _Removed:
    """The value of `Ref: AWS::NoValue`: the enclosing key or list item disappears."""


_REMOVED: Final = _Removed()


def load_template(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON template (short tags become their `Fn::` long forms)."""
    template, problems = decode_str(path.read_text(encoding="utf-8"))
    if template is None or problems:
        details = "; ".join(str(problem) for problem in problems) or "empty template"
        raise TemplateError(f"cannot parse {path}: {details}")
    # cfn-lint returns its own str/dict subclasses carrying line marks; plain JSON types are
    # what boto3 and json.dumps expect downstream.
    plain: dict[str, Any] = json.loads(json.dumps(template, default=str))
    return plain


def load_document(path: Path) -> Any:
    """Parse a JSON or YAML file such as a state machine definition (`*.asl.json|yaml`)."""
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return load_template(path)


def is_intrinsic(value: Any) -> bool:
    """True for `{"Ref": …}`, `{"Fn::…": …}` and `{"Condition": …}` (one key)."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _INTRINSICS


def merge_globals(global_props: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rule: the resource wins for scalars, maps merge, lists append."""
    merged: dict[str, Any] = dict(global_props)
    for key, value in props.items():
        current = merged.get(key)
        if (
            isinstance(current, dict)
            and isinstance(value, dict)
            and not is_intrinsic(current)
            and not is_intrinsic(value)
        ):
            merged[key] = merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = [*current, *value]
        else:
            merged[key] = value
    return merged


@dataclass
class Resolver:
    """Resolves intrinsic functions against parameters, conditions and created resources.

    `refs[logical_id]` is what `Ref` returns and `attributes[logical_id][name]` what
    `Fn::GetAtt` returns; deploy fills both as it creates resources, in dependency order.
    """

    template: Mapping[str, Any]
    stack_name: str
    region: str
    account_id: str
    parameter_values: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Answer a Ref or GetAtt that deploy did not record (placeholders for skipped resources);
    # without them such a reference raises TemplateError.
    fallback_ref: Callable[[str], Any] | None = None
    fallback_attribute: Callable[[str, str], Any] | None = None
    _conditions: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def for_template(
        cls,
        template: Mapping[str, Any],
        *,
        overrides: Mapping[str, Any],
        stack_name: str,
        region: str,
        account_id: str,
    ) -> Resolver:
        """A resolver whose parameters are the template's defaults updated by `overrides`."""
        resolver = cls(template, stack_name, region, account_id)
        resolver.parameter_values = _parameter_values(template.get("Parameters", {}), overrides)
        return resolver

    # -- pseudo parameters and conditions

    def pseudo_parameters(self) -> dict[str, Any]:
        """AWS::Region, AWS::AccountId… as CloudFormation would give them for this stack."""
        stack = f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}"
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            # CloudFormation's UUID is random per stack, and names are built from it (a bucket's,
            # a state machine's): here one per stack name, so two stacks in one moto differ and
            # a stack deployed again gets the same names.
            "AWS::StackId": f"{stack}/{uuid.uuid5(uuid.NAMESPACE_URL, stack)}",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }

    def condition(self, name: str) -> bool:
        """The value of a named condition (evaluated once)."""
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {})
            if name not in conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self._condition_value(conditions[name]))
        return self._conditions[name]

    def _condition_value(self, expression: Any) -> bool:
        if isinstance(expression, dict) and set(expression) == {"Condition"}:
            return self.condition(expression["Condition"])
        value = self.resolve(expression)
        if not isinstance(value, bool):
            raise TemplateError(f"condition does not give a boolean: {expression!r}")
        return value

    # -- resolution

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function replaced by its result."""
        result = self._resolve(value)
        return None if result is _REMOVED else result

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = (self._resolve(item) for item in value)
            return [item for item in items if item is not _REMOVED]
        if not isinstance(value, dict):
            return value
        if is_intrinsic(value):
            ((name, argument),) = value.items()
            return self._intrinsic(name, argument)
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _REMOVED}

    def _intrinsic(self, name: str, argument: Any) -> Any:
        match name:
            case "Ref":
                return self.ref(argument)
            case "Condition":
                return self.condition(argument)
            case "Fn::GetAtt":
                logical_id, attribute = _split_getatt(self._resolve(argument))
                return self.get_att(logical_id, attribute)
            case "Fn::Sub":
                return self._sub(argument)
            case "Fn::Join":
                delimiter, items = argument
                resolved = self._resolve(items)
                return str(delimiter).join(as_text(item) for item in resolved)
            case "Fn::If":
                condition, when_true, when_false = argument
                return self._resolve(when_true if self.condition(condition) else when_false)
            case "Fn::Select":
                index, items = self._resolve(argument)
                return items[int(index)]
            case "Fn::Split":
                delimiter, text = self._resolve(argument)
                return str(text).split(delimiter)
            case "Fn::FindInMap":
                map_name, top, second = self._resolve(argument)[:3]
                try:
                    return self.template["Mappings"][map_name][top][second]
                except KeyError as error:
                    raise TemplateError(f"Fn::FindInMap {argument!r}: no {error}") from error
            case "Fn::Base64":
                return base64.b64encode(as_text(self._resolve(argument)).encode()).decode()
            case "Fn::GetAZs":
                region = self._resolve(argument) or self.region
                return [f"{region}{zone}" for zone in "abc"]
            case "Fn::ToJsonString":
                return json.dumps(self._resolve(argument), separators=(",", ":"))
            case "Fn::Length":
                return len(self._resolve(argument))
            case "Fn::Equals":
                left, right = self._resolve(argument)
                return as_text(left) == as_text(right)
            case "Fn::And":
                return all(self._condition_value(item) for item in argument)
            case "Fn::Or":
                return any(self._condition_value(item) for item in argument)
            case "Fn::Not":
                return not self._condition_value(argument[0])
            case _:
                raise TemplateError(f"{name} cannot be resolved without real AWS")

    def ref(self, name: str) -> Any:
        """What `Ref: name` gives: a parameter, a pseudo parameter or a resource's Ref value."""
        if name == NO_VALUE:
            return _REMOVED
        if name in self.parameter_values:
            return self.parameter_values[name]
        pseudo = self.pseudo_parameters()
        if name in pseudo:
            return pseudo[name]
        if name in self.refs:
            return self.refs[name]
        if self.fallback_ref is not None:
            return self.fallback_ref(name)
        raise TemplateError(f"Ref to {name!r}, which is no parameter or created resource")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        """What `Fn::GetAtt: [logical_id, attribute]` gives."""
        known = self.attributes.get(logical_id, {})
        if attribute in known:
            return known[attribute]
        if self.fallback_attribute is not None:
            return self.fallback_attribute(logical_id, attribute)
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not available")

    def _sub(self, argument: Any) -> str:
        text, raw_variables = _sub_parts(argument)
        variables = self._resolve(raw_variables)

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"  # ${!Literal} escapes a dollar-brace
            if expression in variables:
                return as_text(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return as_text(self.get_att(logical_id, attribute))
            return as_text(self.ref(expression))

        return _SUB_VARIABLE.sub(replace, str(text))

    # -- dependencies

    def references(self, value: Any) -> set[str]:
        """Logical ids that `value` refers to (Ref, GetAtt, Sub), parameters excluded."""
        found: set[str] = set()
        for name in _referenced_names(value):
            if name not in self.parameter_values and not name.startswith("AWS::"):
                found.add(name)
        return found


def _referenced_names(value: Any) -> Iterator[str]:
    """Every name a value refers to, resolved or not (Fn::If branches included)."""
    if isinstance(value, list):
        for item in value:
            yield from _referenced_names(item)
        return
    if not isinstance(value, dict):
        return
    if is_intrinsic(value):
        ((name, argument),) = value.items()
        if name == "Ref" and isinstance(argument, str):
            yield argument
            return
        if name == "Fn::GetAtt":
            if isinstance(argument, str):
                yield argument.split(".", 1)[0]
            elif isinstance(argument, list) and argument and isinstance(argument[0], str):
                yield argument[0]
            return
        if name == "Fn::Sub":
            text, variables = _sub_parts(argument)
            for expression in _SUB_VARIABLE.findall(str(text)):
                if not expression.startswith("!") and expression not in variables:
                    yield expression.split(".", 1)[0] if "." in expression else expression
            yield from _referenced_names(variables)
            return
        yield from _referenced_names(argument)
        return
    for item in value.values():
        yield from _referenced_names(item)


def _sub_parts(argument: Any) -> tuple[str, dict[str, Any]]:
    """Fn::Sub's two forms: `text` or `[text, {name: value}]`."""
    if isinstance(argument, list):
        return str(argument[0]), dict(argument[1])
    return str(argument), {}


def _split_getatt(argument: Any) -> tuple[str, str]:
    if isinstance(argument, str):
        logical_id, _, attribute = argument.partition(".")
        return logical_id, attribute
    logical_id, attribute = argument
    return str(logical_id), str(attribute)


def as_text(value: Any) -> str:
    """How CloudFormation turns a scalar into a string inside Sub/Join (true → "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        raise TemplateError(f"expected a string, got {value!r}")
    return str(value)


def _parameter_values(
    declarations: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Each parameter's value: the override, else the default; lists for list types."""
    unknown = set(overrides) - set(declarations)
    if unknown:
        raise TemplateError(f"parameters not declared in the template: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, declaration in declarations.items():
        if name in overrides:
            raw = overrides[name]
        elif "Default" in declaration:
            raw = declaration["Default"]
        else:
            raise TemplateError(f"parameter {name} has no default and no value was given")
        text = ",".join(map(as_text, raw)) if isinstance(raw, list) else as_text(raw)
        allowed = declaration.get("AllowedValues")
        if allowed is not None and text not in [as_text(item) for item in allowed]:
            raise TemplateError(f"parameter {name}={text!r} is not one of {allowed}")
        pattern = declaration.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(pattern, text):
            raise TemplateError(f"parameter {name}={text!r} does not match {pattern}")
        kind = str(declaration.get("Type", "String"))
        is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
        values[name] = [item.strip() for item in text.split(",")] if is_list else text
    return values
