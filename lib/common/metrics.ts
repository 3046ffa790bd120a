/** The business counters a service declares and counts (implemented by mixins/metrics.mixin.ts). */
export interface CounterSpec {
	name: string;
	description: string;
	labelNames?: string[];
}

export interface MetricsMethods {
	countMetric(name: string, labels?: Record<string, string>, value?: number): void;
}
