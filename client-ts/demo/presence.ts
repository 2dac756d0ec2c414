/**
 * Presence in the demo: each tab picks a friendly name, tells the room where its pointer is on
 * the canvas (`{name, x, y}`, world coordinates; `{name}` while the pointer is elsewhere), and
 * shows the others as labelled cursors and as chips in the header.
 */

import type { JsonValue } from "../src/index.js";
import type { Point } from "./geometry.js";

/** What a client of the demo puts in its presence state. */
export interface PresenceState {
  /** The name shown on its cursor. */
  readonly name: string;
  /** Its pointer on the canvas, if it is there. */
  readonly cursor: Point | null;
}

const ADJECTIVES = [
  "Brave", "Calm", "Clever", "Curious", "Eager", "Gentle", "Happy", "Jolly", "Kind", "Lively",
  "Lucky", "Merry", "Nimble", "Polite", "Proud", "Quick", "Quiet", "Sunny", "Swift", "Witty",
] as const;
const ANIMALS = [
  "Otter", "Heron", "Badger", "Fox", "Lynx", "Panda", "Koala", "Falcon", "Beaver", "Dolphin",
  "Hedgehog", "Owl", "Penguin", "Rabbit", "Robin", "Seal", "Sparrow", "Tiger", "Turtle", "Wombat",
] as const;

/** The longest name accepted (names come from the URL and from other clients). */
export const NAME_LEN_MAX = 32;

/** A random friendly name such as "Curious Otter". */
export function friendlyName(random: () => number = Math.random): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length) % xs.length] as T;
  return `${pick(ADJECTIVES)} ${pick(ANIMALS)}`;
}

/** A stable, readable color for a name (the same in every tab). */
export function colorFor(name: string): string {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return `hsl(${(h >>> 0) % 360} 70% 42%)`;
}

/** Reads another client's presence state; `null` if it is not the demo's shape. */
export function readPresence(state: JsonValue): PresenceState | null {
  if (state === null || typeof state !== "object" || Array.isArray(state)) return null;
  const name = typeof state.name === "string" && state.name !== "" ? state.name.slice(0, NAME_LEN_MAX) : "someone";
  const x = state.x;
  const y = state.y;
  const cursor = typeof x === "number" && typeof y === "number" && Number.isFinite(x) && Number.isFinite(y) ? { x, y } : null;
  return { name, cursor };
}

/** The presence state to send: the name, and the cursor when it is on the canvas. */
export function presenceOf(name: string, cursor: Point | null): JsonValue {
  return cursor === null ? { name } : { name, x: Math.round(cursor.x), y: Math.round(cursor.y) };
}

/** Other clients as cursors on the canvas and chips in the header. */
export class PeopleView {
  private readonly cursors = new Map<string, HTMLElement>();
  private readonly chips = new Map<string, HTMLElement>();

  /**
   * @param cursorLayer where cursors go (world coordinates)
   * @param list where the chips go; `me` is shown first
   */
  constructor(
    private readonly cursorLayer: HTMLElement,
    private readonly list: HTMLElement,
    me: string,
  ) {
    const chip = this.chip(`${me} (you)`, colorFor(me));
    chip.dataset.testid = "me";
    list.append(chip);
  }

  /** Shows client `client`'s new state (`null`: it left or cleared it). */
  update(client: string, state: JsonValue): void {
    const p = state === null ? null : readPresence(state);
    if (p === null) {
      this.cursors.get(client)?.remove();
      this.cursors.delete(client);
      this.chips.get(client)?.remove();
      this.chips.delete(client);
      return;
    }
    const color = colorFor(p.name);
    let chip = this.chips.get(client);
    if (chip === undefined) {
      chip = this.chip(p.name, color);
      chip.dataset.testid = "person";
      chip.dataset.client = client;
      this.chips.set(client, chip);
      this.list.append(chip);
    } else {
      chip.textContent = p.name;
      chip.style.setProperty("--person-color", color);
    }
    let cursor = this.cursors.get(client);
    if (p.cursor === null) {
      cursor?.remove();
      this.cursors.delete(client);
      return;
    }
    if (cursor === undefined) {
      cursor = this.cursor();
      cursor.dataset.client = client;
      this.cursors.set(client, cursor);
      this.cursorLayer.append(cursor);
    }
    const label = cursor.querySelector(".cursor-label");
    if (label !== null && label.textContent !== p.name) label.textContent = p.name;
    cursor.style.setProperty("--person-color", color);
    cursor.style.transform = `translate(${p.cursor.x}px, ${p.cursor.y}px)`;
    cursor.dataset.x = String(p.cursor.x);
    cursor.dataset.y = String(p.cursor.y);
  }

  private chip(text: string, color: string): HTMLElement {
    const el = document.createElement("span");
    el.className = "person";
    el.textContent = text;
    el.style.setProperty("--person-color", color);
    return el;
  }

  private cursor(): HTMLElement {
    const el = document.createElement("div");
    el.className = "cursor";
    el.dataset.testid = "cursor";
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "22");
    svg.setAttribute("viewBox", "0 0 18 22");
    const arrow = document.createElementNS(ns, "path");
    arrow.setAttribute("d", "M1 1 L1 18 L5.5 13.8 L8.6 20.5 L11.6 19.2 L8.6 12.6 L14.6 12.4 Z");
    svg.append(arrow);
    const label = document.createElement("span");
    label.className = "cursor-label";
    el.append(svg, label);
    return el;
  }
}
