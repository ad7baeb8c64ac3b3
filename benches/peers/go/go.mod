module gorobench

go 1.22
