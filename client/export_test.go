package client

// SameCommit is sameCommit for the package's external tests.
var SameCommit = sameCommit
