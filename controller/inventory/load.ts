import { readFileSync, statSync } from 'node:fs';
import { Inventory, INVENTORY_LIMITS, InventoryError, inventoryTooLarge, parseInventory } from './inventory.js';

/** Reads an inventory file: --inventory FILE, else $QFLEET_INVENTORY. A file over the size limit is refused before it is read. */
export function loadInventory(file: string): Inventory {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > INVENTORY_LIMITS.bytes) throw inventoryTooLarge(file);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof InventoryError) throw e;
    throw new InventoryError(`cannot read the inventory ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  return parseInventory(text, file);
}
