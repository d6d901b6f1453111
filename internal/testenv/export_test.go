package testenv

// RunMain is Main without the exit, for the tests of Main itself.
var RunMain = run
