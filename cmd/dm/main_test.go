//go:build !dmlight

package main

import (
	"reflect"
	"testing"
)

// Every function the CLI needs is wired in: a field added to cli.Wiring
// and left unset here would make dm refuse to run nodes. HandOver is the
// light dm's alternative to all of them.
func TestWiringComplete(t *testing.T) {
	v := reflect.ValueOf(wiring)
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; name != "HandOver" && v.Field(i).IsNil() {
			t.Errorf("cli.Wiring.%s is not wired", name)
		}
	}
	if wiring.HandOver != nil {
		t.Error("the all-in-one dm hands commands over: it would exec itself")
	}
}
