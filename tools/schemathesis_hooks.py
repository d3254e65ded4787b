"""Teaches schemathesis the API's custom scalars (loaded with SCHEMATHESIS_HOOKS=...)."""

from hypothesis import strategies as st
from schemathesis.graphql import nodes, scalar

# Decimal: exact decimals as strings; the odd ones too (exponents, NaN, too many places).
scalar(
    "Decimal",
    st.one_of(
        st.decimals(min_value=-(10**13), max_value=10**13, places=4, allow_nan=False),
        st.sampled_from(["NaN", "-Infinity", "1e3", "0.00001", "12.5"]),
    ).map(lambda value: nodes.String(str(value))),
)
# JSON (custom field values): any of the JSON scalars.
scalar(
    "JSON",
    st.one_of(
        st.text(max_size=30).map(nodes.String),
        st.integers(-(10**6), 10**6).map(nodes.Int),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.Null),
    ),
)
