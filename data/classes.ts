/** Class-name helpers shared by the UCF-101 loader and the synthetic UCF-like family. */

/** Split a CamelCase class name into lower-case words: 'ApplyEyeMakeup' -> 'apply eye makeup'. */
export function classNameToWords(name: string): string {
  return name
    .replace(/_/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/** The caption used for class-labelled videos: 'a video of <class name in words>'. */
export function captionForClass(name: string): string {
  return `a video of ${classNameToWords(name)}`;
}
