module fephp

go 1.19
