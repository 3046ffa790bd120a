/** Text rules shared by the services' action params. */

/**
 * A fastest-validator `custom` check: at most `max` characters (Unicode code points), as JSON
 * Schema's maxLength counts them; the validator's own `max` counts UTF-16 units.
 */
export function atMostChars(max: number) {
	return (value: unknown, errors: { type: string; expected: number; actual: number }[]) => {
		if (typeof value === "string") {
			const chars = [...value].length;
			if (chars > max) errors.push({ type: "stringMax", expected: max, actual: chars });
		}
		return value;
	};
}

/** Control characters (C0, DEL, C1): nothing a person's name needs, and trouble in logs and tickets. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** `atMostChars(max)`, and no control characters. */
export function plainText(max: number) {
	const withinMax = atMostChars(max);
	return (value: unknown, errors: { type: string; expected: unknown; actual: unknown }[]) => {
		if (typeof value === "string" && CONTROL_CHARS.test(value))
			errors.push({ type: "stringPattern", expected: "no control characters", actual: "" });
		return withinMax(value, errors as { type: string; expected: number; actual: number }[]);
	};
}
