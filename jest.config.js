/** Unit tests run on an in-process broker; integration tests start real processes and servers. */
module.exports = {
	testEnvironment: "node",
	transform: { "^.+\\.ts$": "ts-jest" },
	testMatch: ["<rootDir>/test/**/*.test.ts"],
	globalSetup: "<rootDir>/test/support/global-setup.ts",
	globalTeardown: "<rootDir>/test/support/global-teardown.ts",
	testTimeout: 60000,
	reporters: ["default", "<rootDir>/test/support/summary-reporter.js"],
	maxWorkers: 2
};
