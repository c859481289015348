// Prints graphql-js's introspection query, as GraphiQL sends it, for the server's limit tests.
// Usage: node introspection-query.js [graphql|graphql17]
const { getIntrospectionQuery } = require(process.argv[2] || "graphql");
process.stdout.write(
  getIntrospectionQuery({
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
    oneOf: true,
  }),
);
