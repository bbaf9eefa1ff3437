package budget

import (
	"testing"
	"time"
)

const ms = time.Millisecond

func TestDerivation(t *testing.T) {
	received := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name                     string
		proxy                    time.Duration
		margin, answerIn         time.Duration // answerIn: AnswerBy - received
		engineMax, defaultEngine time.Duration
		configured, engine       time.Duration
		capped                   bool
	}{
		{"default proxy, default engine", 500 * ms, 100 * ms, 400 * ms, 400 * ms, 300 * ms, 300 * ms, 300 * ms, false},
		{"default proxy, engine at the cap", 500 * ms, 100 * ms, 400 * ms, 400 * ms, 300 * ms, 400 * ms, 400 * ms, false},
		{"default proxy, slow engine", 500 * ms, 100 * ms, 400 * ms, 400 * ms, 300 * ms, 800 * ms, 400 * ms, true},
		{"default proxy, engine as long as the proxy", 500 * ms, 100 * ms, 400 * ms, 400 * ms, 300 * ms, 500 * ms, 400 * ms, true},
		{"short proxy: margin a fifth", 200 * ms, 40 * ms, 160 * ms, 160 * ms, 160 * ms, 300 * ms, 160 * ms, true},
		{"short proxy, default engine fits", 375 * ms, 75 * ms, 300 * ms, 300 * ms, 300 * ms, 300 * ms, 300 * ms, false},
		{"long proxy: margin 100ms", 2 * time.Second, 100 * ms, 1900 * ms, 1600 * ms, 300 * ms, 1700 * ms, 1600 * ms, true},
		{"long proxy, engine under the cap", 2 * time.Second, 100 * ms, 1900 * ms, 1600 * ms, 300 * ms, time.Second, time.Second, false},
		{"smallest proxy", time.Millisecond, 200 * time.Microsecond, 800 * time.Microsecond, 800 * time.Microsecond, 800 * time.Microsecond, time.Millisecond, 800 * time.Microsecond, true},
		{"largest proxy", time.Minute, 100 * ms, time.Minute - 100*ms, 48 * time.Second, 300 * ms, time.Minute, 48 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Of(tt.proxy)
			if got := b.Margin(); got != tt.margin {
				t.Errorf("Margin = %v, want %v", got, tt.margin)
			}
			if got := b.AnswerBy(received).Sub(received); got != tt.answerIn {
				t.Errorf("AnswerBy = received + %v, want + %v", got, tt.answerIn)
			}
			if got := b.EngineMax(); got != tt.engineMax {
				t.Errorf("EngineMax = %v, want %v", got, tt.engineMax)
			}
			if got := b.DefaultEngine(); got != tt.defaultEngine {
				t.Errorf("DefaultEngine = %v, want %v", got, tt.defaultEngine)
			}
			if got, capped := b.Engine(tt.configured); got != tt.engine || capped != tt.capped {
				t.Errorf("Engine(%v) = %v, %v; want %v, %v", tt.configured, got, capped, tt.engine, tt.capped)
			}
			// What every deadline promises, whatever the numbers.
			if d := b.AnswerBy(received).Sub(received); d <= 0 || d > b.Proxy {
				t.Errorf("the answer is due %v after the request, outside (0, %v]", d, b.Proxy)
			}
			if e, _ := b.Engine(b.DefaultEngine()); e != b.DefaultEngine() {
				t.Errorf("the default engine timeout %v is capped to %v", b.DefaultEngine(), e)
			}
		})
	}
}
