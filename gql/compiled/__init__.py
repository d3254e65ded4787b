"""Compiled execution of repeated read operations.

A front-end asks the same few queries all day with different variables. graphql-core's
executor costs some 10 µs per field (a page of 50 clients is hundreds of fields), and SQLAlchemy's
result machinery about a millisecond per statement; together they are most of a request.

The first time a query document arrives it is parsed, validated with the same rules as
always, and compiled if every root field it selects is one the compiler knows (`clients`):
into one SQL statement built with the same filter, sort and keyset functions as the resolvers,
and readers that turn each result row into the response's values. Later requests with that
document only coerce their variables, check the same permissions, charge the same cost and
run that statement through the driver.

Everything else — other fields, directives, mutations, anonymous callers, and any request
that would end in an error — goes to graphql-core's executor, which answers as before. Tests
compare both paths on the same requests (tests/gql/test_compiled.py).
"""

from gql.compiled.operations import CompiledOperations

__all__ = ["CompiledOperations"]
