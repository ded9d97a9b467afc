module github.com/goose-rwkv/goose

go 1.26
