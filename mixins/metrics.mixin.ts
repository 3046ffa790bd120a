/**
 * Business counters beside Moleculer's own metrics, on the node's Prometheus endpoint
 * (METRICS_PORT). Each service declares the counters it owns; `countMetric` is a no-op when
 * metrics are off.
 */
import type { ServiceSchema } from "moleculer";
import type { CounterSpec, MetricsMethods } from "../lib/common/metrics";

export type { CounterSpec, MetricsMethods };

export function createMetricsMixin(counters: CounterSpec[]): Partial<ServiceSchema> {
	return {
		methods: {
			countMetric(name: string, labels?: Record<string, string>, value = 1) {
				this.broker.metrics.increment(name, labels, value);
			}
		},
		created() {
			for (const counter of counters) {
				if (!this.broker.metrics.getMetric(counter.name))
					this.broker.metrics.register({ type: "counter", ...counter });
			}
		}
	};
}
