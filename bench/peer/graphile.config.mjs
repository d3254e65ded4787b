// PostGraphile 5 over the same tables as Clientdesk (bench/run.py installs and starts it).
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
import { jsonPgSmartTags } from "postgraphile/utils";
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";

// Two names in our schema clash with PostGraphile's own: the table client_connections would
// be the type `ClientConnection`, which is also the Relay connection of `Client`; and
// credit_entries.reverses_id is both a unique key and a relation. Rename them; hide secrets.
const Tags = jsonPgSmartTags({
  version: 1,
  config: {
    class: {
      client_connections: { tags: { name: "client_link_status" } },
      clients: { attribute: { password_hash: { tags: { behavior: "-*" } } } },
      staff_users: { attribute: { password_hash: { tags: { behavior: "-*" } } } },
      credit_entries: {
        // No foreign key to clients (a deleted client's entries stay): declare the relation,
        // so that PostGraphile can answer the client card (bench/workloads.py PG_CARD).
        tags: {
          foreignKey:
            "(client_id) references clients (id)|@fieldName client|@foreignFieldName creditEntries",
        },
        constraint: {
          fk_credit_entries_reverses_id_credit_entries: {
            tags: { fieldName: "reversedEntry", foreignFieldName: "reversal" },
          },
        },
      },
    },
  },
});

export default {
  extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset],
  plugins: [Tags],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ["public"],
      poolConfig: { max: 10 },
    }),
  ],
  grafserv: {
    port: Number(process.env.PORT ?? 5678),
    host: "127.0.0.1",
    graphiql: false,
    watch: false,
  },
  grafast: { explain: false },
};
