import { readFileSync } from 'node:fs';
import { Inventory, InventoryError, parseInventory } from './inventory.js';

/** Reads an inventory file: --inventory FILE, else $QFLEET_INVENTORY. */
export function loadInventory(file: string): Inventory {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InventoryError(`cannot read the inventory ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  return parseInventory(text, file);
}
