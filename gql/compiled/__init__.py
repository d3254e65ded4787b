"""Compiled execution of repeated read operations.

A front-end asks the same few queries all day with different variables. graphql-core's
executor costs some 10 µs per field (a page of 50 clients is hundreds of fields), and SQLAlchemy's
result machinery about a millisecond per statement; together they are most of a request.

The first time a document arrives it is parsed, validated with the same rules as always, and
compiled if every root field it selects is one the compiler knows:

- `clients` and `client(id, login)`: one SQL statement for the root rows with their to-one
  relations joined, built with the same filter, sort and keyset functions as the resolvers,
  and readers that turn each row into the response's values; below them, the nested
  connections `creditEntries` and `subAccounts` at any depth, one statement per connection
  and level for every owner at once (the loaders' plan), their counts columns of the owners'
  rows, and the client's other lists by the loaders' own statements (gql/compiled/objects.py);
- `node(id)` for a client's ID, as `client(id)`;
- the other read root fields whose selections below are plain attributes of what their
  resolvers return: the resolver runs, generated code writes its result
  (gql/compiled/resolved.py, gql/compiled/outputs.py);
- the money mutations (creditAdd, creditDeduct, creditNoteCreate, creditEntryReverse): their
  own resolvers, services and rules, with the payload written by generated code
  (gql/compiled/mutations.py).

Later requests with that document only coerce their variables, check the same permissions and
argument rules, charge the same cost and run those statements through the driver.

Everything else — other fields, directives, anonymous callers, and any request that would end
in an error — goes to graphql-core's executor, which answers as before. Tests compare both
paths on the same requests (tests/gql/test_compiled.py), and the mutations on twin databases
(tests/gql/test_compiled_mutations.py).
"""

from gql.compiled.operations import CompiledOperations

__all__ = ["CompiledOperations"]
