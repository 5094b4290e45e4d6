"""A small evaluator of DynamoDB condition expressions, written from the DynamoDB documentation and
independent of ddbridge: unit tests evaluate the conditions ddbridge sends against items in memory.

Covers the subset ddbridge uses: ``attribute_exists``/``attribute_not_exists``, comparisons
``= <> < <= > >=`` of attribute paths (``#name``) and values (``:value``), ``AND``, ``OR``, ``NOT`` and
parentheses; numbers compare as numbers, strings as strings.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

Item = dict[str, dict[str, Any]]
TOKEN = re.compile(r"\s*(attribute_not_exists|attribute_exists|AND|OR|NOT|<>|<=|>=|=|<|>|\(|\)|#\w+|:\w+)")


def evaluate(condition: dict[str, Any], item: Item | None) -> bool:
    """Would DynamoDB accept a write with ``condition`` over ``item`` (None: no item)?"""
    tokens = _tokens(condition["ConditionExpression"])
    names: dict[str, str] = condition.get("ExpressionAttributeNames", {})
    values: dict[str, Any] = condition.get("ExpressionAttributeValues", {})
    parser = _Parser(tokens, names, values, item or {})
    result = parser.expr()
    if parser.pos != len(tokens):
        raise ValueError(f"unparsed tail {tokens[parser.pos :]}")
    return result


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        match = TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"cannot parse {text[pos:]!r}")
        tokens.append(match[1])
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], names: dict[str, str], values: dict[str, Any], item: Item) -> None:
        self.tokens, self.names, self.values, self.item, self.pos = tokens, names, values, item, 0

    def _take(self, expected: str | None = None) -> str:
        token = self.tokens[self.pos]
        if expected is not None and token != expected:
            raise ValueError(f"expected {expected}, got {token}")
        self.pos += 1
        return token

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expr(self) -> bool:
        result = self.term()
        while self._peek() == "OR":
            self._take()
            right = self.term()
            result = result or right
        return result

    def term(self) -> bool:
        result = self.factor()
        while self._peek() == "AND":
            self._take()
            right = self.factor()
            result = result and right
        return result

    def factor(self) -> bool:
        token = self._take()
        if token == "NOT":
            return not self.factor()
        if token == "(":
            result = self.expr()
            self._take(")")
            return result
        if token in ("attribute_exists", "attribute_not_exists"):
            self._take("(")
            name = self.names[self._take()]
            self._take(")")
            return (name in self.item) == (token == "attribute_exists")
        left = self._operand(token)
        op = self._take()
        right = self._operand(self._take())
        if left is None or right is None:  # a missing attribute makes every comparison false
            return False
        return _compare(left, op, right)

    def _operand(self, token: str) -> Any:
        if token.startswith("#"):
            return self.item.get(self.names[token])
        return self.values[token]


def _compare(left: dict[str, Any], op: str, right: dict[str, Any]) -> bool:
    (lt, lv), (rt, rv) = next(iter(left.items())), next(iter(right.items()))
    if lt != rt:
        return op == "<>"
    a, b = (Decimal(lv), Decimal(rv)) if lt == "N" else (lv, rv)
    return {
        "=": a == b,
        "<>": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]
