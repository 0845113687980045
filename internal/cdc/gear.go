package cdc

// gear is the table of the gear hash: one pseudo-random 64-bit value per
// byte value. It is generated, not random: entry i is the (i+1)th output
// of SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom
// number generators", OOPSLA 2014) seeded with gearSeed, that is
//
//	state = gearSeed + (i+1) * 0x9e3779b97f4a7c15   (mod 2^64)
//	z = (state ^ (state >> 30)) * 0xbf58476d1ce4e5b9
//	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
//	gear[i] = z ^ (z >> 31)
//
// The table fixes every chunk boundary: changing the seed or the procedure
// makes every stored chunk useless for deduplication. TestGearTable pins
// it.
var gear = makeGear(gearSeed)

// gearSeed is "dotmesh1" in ASCII, big-endian.
const gearSeed = 0x646f746d65736831

func makeGear(seed uint64) (t [256]uint64) {
	state := seed
	for i := range t {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		t[i] = z ^ (z >> 31)
	}
	return t
}
