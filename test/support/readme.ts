/**
 * Runs the command blocks of README.md and docs/*.md as a reader would. A block takes part when the line before it is
 * `<!-- readme-test: NAME -->`; every other block is left alone, so new README sections are opt-in.
 *
 * - bash blocks run in bash from the repository root. A comment line right under a command is that
 *   command's documented output (`…` stands for anything on the line), checked against what the
 *   command printed.
 * - text blocks are sessions: `$ command` starts it, `mol $ line` types a line into it, and the lines
 *   under one are its documented output, found in order (`…` again a wildcard).
 *
 * On a machine shared with others the system cannot count on ports 3000, 4222 and 27017 being free,
 * so the documented ports (and only those) are replaced by free ones; PORT gives `npm start` the same
 * one. Nothing else in a block is changed.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(__dirname, "..", "..");

export interface Block {
	name: string;
	lang: string;
	body: string;
}

/** README.md and every page of docs/, whose command blocks are run alike. */
export function documentation(): string {
	const pages = fs
		.readdirSync(path.join(ROOT, "docs"))
		.filter(name => name.endsWith(".md"))
		.map(name => path.join("docs", name));
	return ["README.md", ...pages]
		.map(file => fs.readFileSync(path.join(ROOT, file), "utf8"))
		.join("\n");
}

export function markedBlocks(markdown = documentation()) {
	const blocks = new Map<string, Block>();
	const marker = /<!-- readme-test: ([\w-]+) -->\s*\n```(\w*)\n([\s\S]*?)\n```/g;
	for (const [, name, lang, body] of markdown.matchAll(marker)) {
		if (blocks.has(name)) throw new Error(`two documentation blocks are marked ${name}`);
		blocks.set(name, { name, lang, body });
	}
	return blocks;
}

export interface Ports {
	api: number;
	nats: number;
	mongo: number;
}

/** The documented ports, replaced by the test's free ones. */
export function localize(text: string, ports: Ports): string {
	return text
		.replaceAll("localhost:3000", `localhost:${ports.api}`)
		.replaceAll("127.0.0.1:4222", `127.0.0.1:${ports.nats}`)
		.replaceAll("-p 4222", `-p ${ports.nats}`)
		.replaceAll("127.0.0.1:27017", `127.0.0.1:${ports.mongo}`);
}

/** A documented output line as a pattern: `…` matches anything within the line. */
function linePattern(line: string): RegExp {
	const parts = line
		.trim()
		.split("…")
		.map(p => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
	return new RegExp(parts.join("[^\\n]*?"));
}

export interface Step {
	command: string;
	expected: string | null;
}

/** A bash block as commands, each with the output documented in the comment lines under it. */
export function bashSteps(body: string): Step[] {
	const steps: Step[] = [];
	let continued = false;
	let afterCommand = false;
	for (const line of body.split("\n")) {
		if (continued) {
			steps[steps.length - 1].command += `\n${line}`;
		} else if (/^#/.test(line) && afterCommand) {
			const step = steps[steps.length - 1];
			// A JSON answer printed on one line may be documented over several.
			step.expected = (step.expected ?? "") + line.replace(/^#\s?/, "").trim();
			continue;
		} else if (line.trim() === "" || /^#/.test(line)) {
			afterCommand = false;
			continue;
		} else {
			steps.push({ command: line, expected: null });
		}
		continued = line.endsWith("\\");
		afterCommand = true;
	}
	return steps;
}

export interface Shell {
	child: ChildProcess;
	output(): string;
	exited: Promise<number | null>;
	/** Ends the shell and everything it started (its own process group). */
	stop(): Promise<void>;
}

/** Runs `script` in bash, in a process group of its own so that its background jobs end with it. */
export function shell(script: string, env: NodeJS.ProcessEnv, stdin = false, cwd = ROOT): Shell {
	const child = spawn("bash", ["-c", script], {
		cwd,
		env,
		detached: true,
		stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"]
	});
	let output = "";
	child.stdout!.on("data", d => (output += d.toString()));
	child.stderr!.on("data", d => (output += d.toString()));
	const exited = new Promise<number | null>(resolve => child.once("exit", code => resolve(code)));
	const signal = (sig: NodeJS.Signals) => {
		try {
			process.kill(-child.pid!, sig);
		} catch {
			// already gone
		}
	};
	return {
		child,
		output: () => output,
		exited,
		async stop() {
			signal("SIGTERM");
			const killer = setTimeout(() => signal("SIGKILL"), 10000);
			await exited;
			// The group outlives bash when its jobs still run; wait until it is empty.
			for (let i = 0; i < 100; i++) {
				try {
					process.kill(-child.pid!, 0);
				} catch {
					break;
				}
				await new Promise(r => setTimeout(r, 100));
			}
			clearTimeout(killer);
		}
	};
}

/**
 * Runs a bash block step by step in one shell (variables carry over) and returns, per step, the
 * documented and the printed output, and the shell, whose background jobs may still run.
 */
export async function runBash(
	block: Block,
	ports: Ports,
	env: NodeJS.ProcessEnv,
	timeoutMs: number
): Promise<{ shell: Shell; results: StepResult[] }> {
	const steps = bashSteps(localize(block.body, ports));
	const run = shell(`${markedScript(steps, "")}\necho "@@step end@@"`, env);
	return { shell: run, results: await stepResults(block, steps, run, "", timeoutMs) };
}

export interface StepResult {
	step: Step;
	printed: string;
}

/** The steps as one script, each announced by a marker line (`tag` tells one block's from another's). */
function markedScript(steps: Step[], tag: string): string {
	return steps.map((s, i) => `echo "@@step ${tag}${i}@@"\n${s.command}`).join("\n");
}

/** Waits for a marked script's end marker and cuts what each step printed out of the output. */
async function stepResults(
	block: Block,
	steps: Step[],
	run: Shell,
	tag: string,
	timeoutMs: number
): Promise<StepResult[]> {
	const end = `@@step ${tag}end@@`;
	const deadline = Date.now() + timeoutMs;
	while (!run.output().includes(end) && Date.now() < deadline)
		await new Promise(r => setTimeout(r, 100));
	const output = run.output();
	if (!output.includes(end)) {
		await run.stop();
		throw new Error(`README block ${block.name} did not finish:\n${output}`);
	}
	return steps.map((step, i) => {
		const from = output.indexOf(`@@step ${tag}${i}@@`);
		const to = output.indexOf(i + 1 < steps.length ? `@@step ${tag}${i + 1}@@` : end, from);
		return { step, printed: output.slice(from, to) };
	});
}

/**
 * One shell that runs several blocks in turn, as a reader runs them in one terminal: variables
 * and background jobs (`%1`, `wait`) carry over from block to block. Each block is sourced from a
 * file with its input from /dev/null, so no command can read the blocks that follow.
 */
export function terminal(env: NodeJS.ProcessEnv, cwd: string) {
	const run = shell('while IFS= read -r line; do eval "$line"; done', env, true, cwd);
	let blocks = 0;
	return {
		shell: run,
		async run(block: Block, ports: Ports, timeoutMs: number): Promise<StepResult[]> {
			const steps = bashSteps(localize(block.body, ports));
			const tag = `${++blocks}.`;
			const dir = fs.mkdtempSync(path.join(os.tmpdir(), "readme-block-"));
			const file = path.join(dir, "block.sh");
			fs.writeFileSync(file, markedScript(steps, tag));
			run.child.stdin!.write(`source ${file} < /dev/null; echo "@@step ${tag}end@@"\n`);
			try {
				return await stepResults(block, steps, run, tag, timeoutMs);
			} finally {
				fs.rmSync(dir, { recursive: true, force: true });
			}
		}
	};
}

/**
 * The repository as a fresh clone has it (tracked and new files of the work tree, nothing built:
 * no dist/, no .cache/), in a temporary folder, with this checkout's node_modules linked in.
 */
export function freshCopy(): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tickets-clone-"));
	const files = execFileSync(
		"git",
		["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
		{ cwd: ROOT, encoding: "utf8" }
	)
		.split("\0")
		.filter(f => f && !/^(node_modules|\.cache|dist|data)(\/|$)/.test(f));
	for (const file of files) {
		const from = path.join(ROOT, file);
		if (!fs.existsSync(from)) continue; // deleted in the work tree, not yet committed
		fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
		fs.cpSync(from, path.join(dir, file));
	}
	fs.symlinkSync(
		fs.realpathSync(path.join(ROOT, "node_modules")),
		path.join(dir, "node_modules")
	);
	return dir;
}

export function matchesDocumented(documented: string, printed: string): boolean {
	return linePattern(documented).test(printed);
}

export interface SessionLine {
	input: string;
	expected: string[];
}

/** A text block session: its starting command and each typed line with its documented output. */
export function session(block: Block): { command: string; lines: SessionLine[]; output: string[] } {
	const rows = block.body.split("\n");
	if (!rows[0].startsWith("$ ")) throw new Error(`README session ${block.name} has no "$ " line`);
	const lines: SessionLine[] = [];
	const output: string[] = [];
	for (const row of rows.slice(1)) {
		if (row.startsWith("mol $ ")) lines.push({ input: row.slice(6), expected: [] });
		else if (row.trim() && row.trim() !== "…")
			(lines.length > 0 ? lines[lines.length - 1].expected : output).push(row);
	}
	return { command: rows[0].slice(2), lines, output };
}

/** Waits until `text` holds every documented line, in order; returns the ones still missing. */
export async function awaitLines(
	text: () => string,
	expected: string[],
	timeoutMs: number
): Promise<string[]> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		let rest = text();
		const missing: string[] = [];
		for (const line of expected) {
			const found = linePattern(line).exec(rest);
			if (found) rest = rest.slice(found.index + found[0].length);
			else missing.push(line);
		}
		if (missing.length === 0 || Date.now() > deadline) return missing;
		await new Promise(r => setTimeout(r, 100));
	}
}
