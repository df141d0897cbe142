// GraphiQL as SegmentQL serves it: every file from this server (no CDN), opening on the README's tour.
(function () {
  "use strict";

  const AUDIENCE = `# SegmentQL: who did, or didn't, do what. Run with the ▶ button (or Ctrl-Enter).
#
# The variables below hold the README tour's first question. seed.py printed the instant its demo
# data ends ("data ends …"): put it in "asOf" to get the README's numbers; null means now.
# Docs: the book icon on the left (start at SegmentFilter); the filter language: docs/filters.md.
#
# API keys: once any key exists, every request needs one (loopback included). Put it in the
# Headers tab below:   {"Authorization": "Bearer <your API key>"}

query Audience($filter: SegmentFilter, $asOf: DateTime) {
  profiles(filter: $filter, asOf: $asOf, first: 3) {
    totalCount
    nodes { email firstName lastName }
    pageInfo { hasNextPage endCursor }
  }
}
`;
  const AUDIENCE_VARIABLES = JSON.stringify({
    filter: {
      did: {
        metric: "Received Product Recommendation from Customer Agent",
        within: { lastDays: 7 },
        notFollowedBy: { metric: "Placed Order", withinHours: 48 },
      },
    },
    asOf: null,
  }, null, 2);

  const TEXT = `# The same language as text, accepted anywhere a filter goes.
query Escalated($asOf: DateTime) {
  escalated: profiles(
    filter: {expression: "did \\"Conversation with Customer Agent Escalated\\" in the last 7 days"}
    asOf: $asOf
    first: 3
  ) { totalCount nodes { email } }
  smsStarters: profiles(
    filter: {expression: "did \\"Started Conversation with Customer Agent\\" where channel = \\"SMS\\""}
    asOf: $asOf
    first: 3
  ) { totalCount nodes { email } }
}
`;

  const METRICS = `# What the store holds: every metric with its count and latest event.
query Metrics {
  metrics { name agentMetric count lastSeenAt }
}
`;

  const fetcher = GraphiQL.createFetcher({ url: window.location.href.split("?")[0] });
  const explorer = GraphiQLPluginExplorer.explorerPlugin();
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultEditorToolsVisibility: true,
      defaultTabs: [
        { query: AUDIENCE, variables: AUDIENCE_VARIABLES },
        { query: TEXT, variables: JSON.stringify({ asOf: null }, null, 2) },
        { query: METRICS },
      ],
      defaultHeaders: "{}",
    }),
  );
})();
