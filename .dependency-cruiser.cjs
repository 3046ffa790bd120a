/**
 * The project's layering, checked by `npm run lint` (docs/design.md, "Layout"):
 * services → mixins → lib; in lib, each owner's folder uses only the folders below it:
 *   common ← store ← {shows, reservations} ← checkout ← gateway, and operations uses common and store.
 */
const lib = folder => `^lib/${folder}/`;

/** lib folder → the lib folders it may import (besides itself). */
const LIB_MAY_USE = {
	common: [],
	store: ["common"],
	shows: ["common", "store"],
	reservations: ["common", "store"],
	checkout: ["common", "store", "reservations"],
	gateway: ["common", "checkout"],
	operations: ["common", "store"]
};

module.exports = {
	forbidden: [
		{
			name: "no-circular",
			severity: "error",
			comment:
				"An import circle, even type-only on one side, ties modules that should stand apart.",
			from: {},
			to: { circular: true }
		},
		{
			name: "services-stand-alone",
			severity: "error",
			comment:
				"Services never import each other, not even types: they talk through the broker.",
			from: { path: "^services/([^/]+)\\.service\\.ts$" },
			to: { path: "^services/", pathNot: "^services/$1\\.service\\.ts$" }
		},
		{
			name: "lib-below-mixins-and-services",
			severity: "error",
			comment:
				"lib is the bottom layer: it never imports mixins, services or the broker options.",
			from: { path: "^lib/" },
			to: { path: ["^mixins/", "^services/", "^moleculer\\.config\\.ts$"] }
		},
		{
			name: "mixins-below-services",
			severity: "error",
			from: { path: "^mixins/" },
			to: { path: ["^services/", "^moleculer\\.config\\.ts$"] }
		},
		{
			name: "config-imports-no-lib",
			severity: "error",
			comment: "The settings module reads the environment and nothing of the project.",
			from: { path: "^lib/common/config\\.ts$" },
			to: { path: "^(lib|mixins|services)/" }
		},
		...Object.entries(LIB_MAY_USE).map(([folder, allowed]) => ({
			name: `lib-${folder}-layer`,
			severity: "error",
			comment: `lib/${folder} may use only ${["itself", ...allowed].join(", ")} in lib.`,
			from: { path: lib(folder) },
			to: { path: "^lib/", pathNot: [folder, ...allowed].map(lib) }
		})),
		{
			name: "no-lib-outside-folders",
			severity: "error",
			comment: "Every lib module lives in its owner's folder.",
			from: {},
			to: { path: "^lib/[^/]+\\.ts$" }
		}
	],
	options: {
		doNotFollow: { path: "node_modules" },
		exclude: { path: "^(node_modules|dist|\\.cache)/" },
		tsPreCompilationDeps: true,
		tsConfig: { fileName: "tsconfig.json" },
		enhancedResolveOptions: { extensions: [".ts", ".js", ".json"] }
	}
};
