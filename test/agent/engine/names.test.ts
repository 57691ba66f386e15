import { strict as assert } from 'node:assert';
import { InvalidArgumentError } from '../../../agent/errors.js';
import { isValidContainerName, MAX_NAME_LENGTH, validateContainerName } from '../../../agent/engine/names.js';

describe('container names (qchroot rules)', () => {
  const refusal = (name: unknown) => {
    try {
      validateContainerName(name);
    } catch (e) {
      assert.ok(e instanceof InvalidArgumentError);
      return e.message;
    }
    return undefined;
  };

  it('takes letters, digits, dash and underscore, up to 63 characters', () => {
    for (const ok of ['web1', 'a', 'WWW_2', 'x-y', '_x', '1a', 'a1', '0-0', 'a'.repeat(MAX_NAME_LENGTH)]) {
      assert.equal(validateContainerName(ok), ok);
    }
  });

  it('refuses each broken rule with its own message', () => {
    assert.equal(refusal(''), 'Error; a chroot container name is required.');
    assert.equal(refusal(42), 'Error; a chroot container name is required.');
    assert.equal(refusal('123'), 'Error; chroot container name "123" is all numeric, which is invalid.');
    assert.equal(refusal('-x'), 'Error; chroot container name "-x" may not begin with a dash.');
    assert.equal(refusal('a b'), 'Error; chroot container name "a b" may contain only letters, digits, dash and underscore.');
    assert.equal(refusal('../etc'), 'Error; chroot container name "../etc" may contain only letters, digits, dash and underscore.');
    assert.match(refusal('a'.repeat(MAX_NAME_LENGTH + 1))!, /is 64 characters long; the limit is 63\./);
  });

  it('isValidContainerName (List skips state files by it) says yes exactly when validateContainerName accepts', () => {
    // Every string of up to three characters over an alphabet with each class the rules tell apart.
    const alphabet = ['a', 'Z', '0', '9', '-', '_', '.', ' ', '/', 'é', '\n'];
    let names = [''];
    const all: string[] = [];
    for (let len = 1; len <= 3; len++) {
      names = names.flatMap((p) => alphabet.map((c) => p + c));
      all.push(...names);
    }
    all.push('a'.repeat(MAX_NAME_LENGTH - 1), 'a'.repeat(MAX_NAME_LENGTH), 'a'.repeat(MAX_NAME_LENGTH + 1), '1'.repeat(MAX_NAME_LENGTH), `-${'a'.repeat(10)}`);
    let valid = 0;
    for (const n of all) {
      const accepted = refusal(n) === undefined;
      assert.equal(isValidContainerName(n), accepted, JSON.stringify(n));
      if (accepted) valid++;
    }
    // The set holds both kinds in numbers (a rule wrongly always-true or always-false would show).
    assert.ok(valid > 100 && valid < all.length - 100, `${valid} of ${all.length}`);
  });
});
