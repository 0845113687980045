package main

import (
	"reflect"
	"testing"
)

// Every function the CLI needs is wired in: a field added to cli.Wiring
// and left unset here would make dm refuse to run nodes.
func TestWiringComplete(t *testing.T) {
	v := reflect.ValueOf(wiring)
	for i := range v.NumField() {
		if v.Field(i).IsNil() {
			t.Errorf("cli.Wiring.%s is not wired", v.Type().Field(i).Name)
		}
	}
}
