module github.com/charm-kv/charm-kv/bindings/go

go 1.24
