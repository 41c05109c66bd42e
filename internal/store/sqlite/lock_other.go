//go:build !unix

package sqlite

import "os"

// lockFile has no portable form here: ownership is not enforced off Unix
// (the image and every supported deployment run on Linux).
func lockFile(*os.File) error { return nil }
