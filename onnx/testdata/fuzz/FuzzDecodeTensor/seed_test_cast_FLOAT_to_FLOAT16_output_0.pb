go test fuzz v1
[]byte("\b\x03\b\x04\x10\nB\x06outputJ\x18d8\xb99\xd28\\8\xc76+9\x007\";\xb6;#6U:;8")
