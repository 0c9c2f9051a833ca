module charm-kv/tools/go-vectors

go 1.21

// Every version below is the one Charm v0.12.6's go.mod selects, so this runs
// the same crypto code as the Charm client (x/crypto v0.10.0 included).
require (
	github.com/jacobsa/crypto v0.0.0-20190317225127-9f44e2d11115
	github.com/muesli/sasquatch v0.0.0-20200811221207-66979d92330a
)

require (
	github.com/jacobsa/oglematchers v0.0.0-20150720000706-141901ea67cd // indirect
	github.com/jacobsa/oglemock v0.0.0-20150831005832-e94d794d06ff // indirect
	github.com/jacobsa/ogletest v0.0.0-20170503003838-80d50a735a11 // indirect
	github.com/jacobsa/reqtrace v0.0.0-20150505043853-245c9e0234cb // indirect
	github.com/mitchellh/go-homedir v1.1.0 // indirect
	golang.org/x/crypto v0.10.0 // indirect
	golang.org/x/sys v0.9.0 // indirect
	golang.org/x/term v0.9.0 // indirect
)
