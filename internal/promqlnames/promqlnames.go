// Package promqlnames tells which metric names a PromQL expression selects,
// for the offline checks that hold rules and dashboards to the exporter's
// metric catalog.
package promqlnames

import (
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// Of returns the metric name of every vector selector in e, in the order
// they appear, repeats included. A selector without a metric name
// ({job="x"}) gives "", so a caller can reject it; a name given as
// {__name__="x"} counts as x.
func Of(e parser.Expr) []string {
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, selectorName(vs))
		}
		return nil
	})
	return names
}

// Parse parses expr and returns Of its expression.
func Parse(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	return Of(e), nil
}

func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			return m.Value
		}
	}
	return ""
}
