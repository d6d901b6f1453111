// Command hello is what testenv's own tests build: it prints "hello".
package main

import "fmt"

func main() { fmt.Println("hello") }
