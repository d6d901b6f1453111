package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetgate/fleetgate/internal/browser"
	"github.com/fleetgate/fleetgate/internal/testenv"
)

// SignIn opens the dashboard at base in b, signs in with token as a user
// does (the form, not the API) and waits for the fleet view to list
// vehicles rows.
func SignIn(t testing.TB, b *browser.Browser, base, token string, vehicles int) {
	t.Helper()
	b.Run("open the dashboard", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.Run("sign in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("form.signin button[type=submit]")))
	b.Until(time.Minute, "the fleet view", func() error {
		var n int
		if err := b.Eval(`Number(document.querySelector(".vlist .count")?.textContent.split(" ")[0] ?? -1)`, &n); err != nil {
			return err
		}
		if n != vehicles {
			return fmt.Errorf("the list counts %d vehicles, want %d", n, vehicles)
		}
		return testenv.True(true)
	})
}
