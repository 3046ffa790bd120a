import js from "@eslint/js";
import tseslint from "typescript-eslint";
import prettier from "eslint-config-prettier";

export default tseslint.config(
	{ ignores: ["node_modules/", "dist/", ".cache/", "data/", "coverage/", "bench/results/"] },
	js.configs.recommended,
	...tseslint.configs.recommended,
	prettier,
	{
		languageOptions: {
			globals: {
				process: "readonly",
				console: "readonly",
				require: "readonly",
				module: "writable",
				__dirname: "readonly",
				__filename: "readonly",
				setTimeout: "readonly",
				clearTimeout: "readonly",
				setInterval: "readonly",
				clearInterval: "readonly",
				Buffer: "readonly"
			}
		},
		rules: {
			"@typescript-eslint/no-explicit-any": "off",
			"@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
			"@typescript-eslint/no-require-imports": "off"
		}
	},
	{
		// The box-office page's script runs in the browser.
		files: ["public/**/*.js"],
		languageOptions: {
			sourceType: "script",
			globals: Object.fromEntries(
				[
					"window",
					"document",
					"fetch",
					"EventSource",
					"localStorage",
					"crypto",
					"CSS",
					"Promise"
				].map(name => [name, "readonly"])
			)
		}
	}
);
