// Types for a TypeScript front-end, generated from Clientdesk's checked-in schema.graphql:
//   npm ci && npx graphql-codegen --config codegen.ts
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["operations.graphql"],
  generates: {
    "generated/": {
      preset: "client",
      config: {
        // Decimal amounts and times are strings on the wire: never JavaScript numbers
        scalars: { Decimal: "string", DateTime: "string", JSON: "unknown" },
        enumsAsTypes: true,
      },
    },
  },
};

export default config;
