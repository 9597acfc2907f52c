package antientropy

// matchSegment compares one segment's KeyDescriptors: theirs (the
// initiator's) and ours, both sorted. Descriptors are grouped by key tag
// (their high half); within a group, equal descriptors are the same key at
// the same version and need nothing. Of the rest:
//
//   - each of theirs is wanted: we lack that key or hold another version
//     of it. check is set when the group holds one of ours that matched
//     nothing (most likely that key at another version): the initiator
//     pushes with the check flag and we return what its version lacks;
//   - each of ours is sent, unless the group holds one of theirs that
//     matched nothing: that is then most likely the same key, and what we
//     hold beyond it goes back in the push reply instead.
//
// A key-tag collision between two different keys can withhold one of ours
// for one pass; the roots still differ afterwards, and the next pass, with
// a new salt, sends it. Pure; the scratch slices may be nil.
func matchSegment(theirs, ours []uint32, want func(i int, check bool), send func(j int), scratch *[2][]int) {
	unT, unO := scratch[0][:0], scratch[1][:0]
	i, j := 0, 0
	for i < len(theirs) || j < len(ours) {
		var kt uint32
		switch {
		case i == len(theirs):
			kt = ours[j] >> 16
		case j == len(ours):
			kt = theirs[i] >> 16
		default:
			kt = min(theirs[i]>>16, ours[j]>>16)
		}
		ie, je := i, j
		for ie < len(theirs) && theirs[ie]>>16 == kt {
			ie++
		}
		for je < len(ours) && ours[je]>>16 == kt {
			je++
		}
		unT, unO = unT[:0], unO[:0]
		for a, b := i, j; a < ie || b < je; {
			switch {
			case b == je || a < ie && theirs[a] < ours[b]:
				unT = append(unT, a)
				a++
			case a == ie || ours[b] < theirs[a]:
				unO = append(unO, b)
				b++
			default: // same key, same version
				a++
				b++
			}
		}
		for _, t := range unT {
			want(t, len(unO) > 0)
		}
		if len(unT) == 0 {
			for _, o := range unO {
				send(o)
			}
		}
		i, j = ie, je
	}
	scratch[0], scratch[1] = unT, unO
}
