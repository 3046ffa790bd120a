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
