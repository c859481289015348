//! `schema.graphql` is the API's contract: it must be exactly what the code serves.

#[test]
fn schema_graphql_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = herald_server::graphql::sdl();
    assert!(
        committed == generated,
        "schema.graphql is stale: regenerate it with `cargo run -p herald-server -- print-schema > schema.graphql`"
    );
}

#[test]
fn schema_keeps_the_fixed_contract() {
    let sdl = herald_server::graphql::sdl();
    for fragment in [
        "scalar DateTime",
        "createDestination(input: CreateDestinationInput!): CreateDestinationPayload!",
        "updateDestination(input: UpdateDestinationInput!): UpdateDestinationPayload!",
        "deleteDestination(input: DeleteDestinationInput!): DeleteDestinationPayload!",
        "destination(id: ID!): Destination",
        "destinations(first: Int, after: String, displayName: String): DestinationConnection!",
        "viewer: Viewer!",
        "signingSecret: String\n",
        "totalCount: Int!",
        "auditEvents(first: Int, after: String, targetId: ID, action: String, since: DateTime): AuditEventConnection!",
        // Log types: on destinations and their inputs, on alerts and sendAlert's input.
        // (On Destination, followed by the rate limit's description.)
        "logTypes: [String!]!\n\t\"\"\"\n\tRequests per minute this destination",
        "\tlogTypes: [String!]!\n\t\"\"\"\n\tEvery delivery of this alert",
        "\tlogTypes: [String!]\n",
        // Auto-disable: the threshold on destinations and both inputs, why and when, the stream.
        "\tautoDisableAfterFailures: Int\n",
        "\tdisabledReason: String\n",
        "\tdisabledAt: DateTime\n",
        "destinationUpdated(id: ID): Destination!",
        // Rate limit: on destinations and both inputs, an Int where null means no limit.
        "rateLimitPerMinute: Int\n\tenabled: Boolean!",
    ] {
        assert!(sdl.contains(fragment), "schema lacks {fragment:?}");
    }
}
