package dotmesh

// CreateDotAnyName makes a dot as a node did before names starting with
// '-' or '_' were refused, so that tests can check such dots still work.
var CreateDotAnyName = (*Node).createDot
