/**
 * The operators' actions of `shows`, reached only through the REPL (lib/operations/repl-commands.ts): the
 * live holds, a new show, a house resized. The service spreads them among its actions.
 */
import type { Context } from "moleculer";
import { houseTooSmall } from "../common/errors";
import { seatsInDocument, toPublicShow, toShowState } from "./show-seats";
import { BY_SHOW, insertShow, liveHolds, SHOW_ID, type ShowStoreAccess } from "./show-store";
import type { ShowWriter } from "./show-writer";
import type { ChangeListeners } from "./change-listeners";
import { plainText } from "../common/text";
import type { HoldView, PublicShow } from "../common/types";

/** What the operators' actions need of the shows service. */
interface ShowsService extends ShowStoreAccess {
	writer: ShowWriter;
	changeListeners: ChangeListeners;
}

const HOUSE_SIZE = { type: "number", integer: true, min: 1, max: 100000 } as const;

export const operatorActions = {
	/** Operators: live unconfirmed holds and their deadlines. */
	holds: {
		params: { showID: { ...SHOW_ID, optional: true } },
		handler(this: ShowsService, ctx: Context<{ showID?: string }>): Promise<HoldView[]> {
			return liveHolds(this, ctx.params.showID);
		}
	},

	/** Operators: add a show. */
	create: {
		params: {
			name: { type: "string", trim: true, min: 1, custom: plainText(200) },
			houseSize: HOUSE_SIZE
		},
		async handler(
			this: ShowsService,
			ctx: Context<{ name: string; houseSize: number }>
		): Promise<PublicShow> {
			const show = await insertShow(this, ctx.params.name, ctx.params.houseSize);
			this.changeListeners.changed(toShowState(show));
			return toPublicShow(show);
		}
	},

	/** Operators: change a house size, never below the seats already held or sold. */
	resize: {
		...BY_SHOW,
		params: { showID: SHOW_ID, houseSize: HOUSE_SIZE },
		handler(
			this: ShowsService,
			ctx: Context<{ showID: string; houseSize: number }>
		): Promise<PublicShow> {
			return this.writer.mutate(ctx.params.showID, show => {
				const reserved = seatsInDocument(show);
				if (ctx.params.houseSize < reserved)
					throw houseTooSmall(ctx.params.houseSize, reserved);
				show.houseSize = ctx.params.houseSize;
				return { result: toPublicShow(show), changed: true };
			});
		}
	}
};
